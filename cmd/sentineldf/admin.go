package main

import (
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/sentineldf/sentineldf"
	"github.com/sentineldf/sentineldf/api"
	"github.com/sentineldf/sentineldf/detect"
	"github.com/sentineldf/sentineldf/inmem"
	"github.com/sentineldf/sentineldf/telemetry"
)

func newAdminCmd(io stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Operator commands that work on the service's storage directly",
	}
	var dataDir, plan, plansFile string
	create := &cobra.Command{
		Use:   "create-org NAME",
		Short: "Create an org and print its first API key (shown once)",
		Example: `  sentineldf admin create-org "Acme Research" --plan pro
  sentineldf admin create-org acme --plan free --data-dir ./sdf-data`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			log := telemetry.NewLogger(io.err, slog.LevelWarn, "sentineldf-admin")
			be, err := openEmbedded(cmd.Context(), dataDir, 8, log, nil)
			if err != nil {
				return err
			}
			defer be.close()
			eng, err := detect.New(detect.Options{})
			if err != nil {
				return err
			}
			plans, err := loadPlans(plansFile)
			if err != nil {
				return err
			}
			srv, err := api.New(api.Config{
				Store: be.db, Queue: be.db, Blobs: be.blobs, Cache: be.cache,
				Limiter: inmem.NewLimiter(inmem.LimiterOptions{}), Engine: eng,
				Plans: plans, Secret: be.secret, Logger: log, Version: version,
			})
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
	create.Flags().StringVar(&plansFile, "plans", "", "plan limits `FILE`, as given to serve --plans")
	cmd.AddCommand(create)
	return cmd
}

func printOrgKey(w io.Writer, org *sentineldf.Org, key string) {
	fmt.Fprintf(w, "org:     %s (%s, plan %s)\n", org.ID, org.Name, org.Plan)
	fmt.Fprintf(w, "api key: %s\n", key)
	fmt.Fprintln(w, "The key is shown once; store it securely.")
}
