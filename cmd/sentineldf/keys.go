package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sentineldf/sentineldf/mbom"
)

// newKeysCmd is `sentineldf keys`: signing key management.
func newKeysCmd(io stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the Ed25519 keys that sign MBOMs",
	}
	cmd.AddCommand(newKeysGenerateCmd(io))
	return cmd
}

func newKeysGenerateCmd(io stdio) *cobra.Command {
	var (
		out   string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "generate --out DIR",
		Short: "Generate an Ed25519 signing key pair",
		Long: "Generate an Ed25519 key pair for signing MBOMs: DIR/" + mbom.PrivateKeyFile + " (PKCS#8 PEM, mode 0600;\n" +
			"keep it secret) and DIR/" + mbom.PublicKeyFile + " (PKIX PEM, mode 0644; give it to verifiers).\n" +
			"Existing files are never overwritten unless --force is given.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, err := mbom.GenerateKeyPair(out, force)
			if err != nil {
				return usageErr(err)
			}
			keyID, err := mbom.KeyID(pub)
			if err != nil {
				return err
			}
			fmt.Fprintf(io.out, "wrote %s (private, keep secret)\nwrote %s\nkeyid: %s\n",
				filepath.Join(out, mbom.PrivateKeyFile), filepath.Join(out, mbom.PublicKeyFile), keyID)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write "+mbom.PrivateKeyFile+" and "+mbom.PublicKeyFile+" to (created if missing)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite existing key files")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
