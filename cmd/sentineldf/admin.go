package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/api"
	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/inmem"
	"github.com/sentineldf/sentineldf/postgres"
	"github.com/sentineldf/sentineldf/telemetry"
)

func newAdminCmd(io stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Operator commands that work on the service's storage directly",
	}
	var dataDir, plan, plansFile string
	var dist deployFlags
	create := &cobra.Command{
		Use:   "create-org NAME",
		Short: "Create an org and print its first API key (shown once)",
		Example: `  sentineldf admin create-org "Acme Research" --plan pro
  sentineldf admin create-org acme --plan free --data-dir ./sdf-data`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log := telemetry.NewLogger(io.err, slog.LevelWarn, "sentineldf-admin")
			eng, err := detect.New(detect.Options{})
			if err != nil {
				return err
			}
			plans, err := loadPlans(plansFile)
			if err != nil {
				return err
			}
			cfg := api.Config{
				Limiter: inmem.NewLimiter(inmem.LimiterOptions{}), Engine: eng,
				Plans: plans, Logger: log, Version: version,
			}
			if dist.databaseURL != "" {
				// The distributed deployment: Postgres, S3, Redis.
				be, err := openCloud(cmd.Context(), &dist, log, nil, postgres.Options{})
				if err != nil {
					return err
				}
				defer be.close()
				cfg.Store, cfg.Queue, cfg.Blobs, cfg.Cache, cfg.Secret = be.db, be.db, be.blobs, be.cache, be.secret
			} else {
				be, err := openEmbedded(cmd.Context(), dataDir, 8, log, nil)
				if err != nil {
					return err
				}
				defer be.close()
				cfg.Store, cfg.Queue, cfg.Blobs, cfg.Cache, cfg.Secret = be.db, be.db, be.blobs, be.cache, be.secret
			}
			srv, err := api.New(cfg)
			if err != nil {
				return err
			}
			org, key, err := srv.CreateOrg(cmd.Context(), args[0], plan, false)
			if err != nil {
				if c := sentineldf.ErrorCode(err); c == sentineldf.EINVALID || c == sentineldf.ECONFLICT {
					return usageErr(err)
				}
				return err
			}
			printOrgKey(io.out, org, key)
			return nil
		},
	}
	create.Flags().StringVar(&plan, "plan", "free", "the org's plan: free, pro or enterprise")
	create.Flags().StringVar(&dataDir, "data-dir", envOr("SENTINELDF_DATA_DIR", defaultDataDir()), "the `DIR` that `serve` uses (env SENTINELDF_DATA_DIR)")
	create.Flags().StringVar(&plansFile, "plans", os.Getenv("SENTINELDF_PLANS"), "plan limits `FILE`, as given to serve --plans (env SENTINELDF_PLANS)")
	create.Flags().StringVar(&dist.databaseURL, "database-url", os.Getenv("DATABASE_URL"), "use the distributed deployment's Postgres `URL` (env DATABASE_URL; then S3_* and SENTINELDF_SECRET are needed too) instead of --data-dir")
	dist.s3.Region = envOr("S3_REGION", "us-east-1")
	dist.s3.Endpoint, dist.s3.Bucket, dist.s3.SSE = os.Getenv("S3_ENDPOINT"), os.Getenv("S3_BUCKET"), os.Getenv("S3_SSE")
	dist.redisURL = os.Getenv("REDIS_URL")
	cmd.AddCommand(create)
	return cmd
}

func printOrgKey(w io.Writer, org *sentineldf.Org, key string) {
	fmt.Fprintf(w, "org:     %s (%s, plan %s)\n", org.ID, org.Name, org.Plan)
	fmt.Fprintf(w, "api key: %s\n", key)
	fmt.Fprintln(w, "The key is shown once; store it securely.")
}
