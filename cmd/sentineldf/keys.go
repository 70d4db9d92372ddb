package main

import "github.com/spf13/cobra"

// STUB: replaced by the real command.
func newKeysCmd(io stdio) *cobra.Command {
	return &cobra.Command{Use: "keys", Short: "not yet implemented"}
}
