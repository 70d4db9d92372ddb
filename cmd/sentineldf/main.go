// Command sentineldf is SentinelDF's one binary: a data firewall for LLM
// training data. See README.md for the subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK      = 0
	exitFinding = 1 // --fail-on-quarantine tripped, or a verification failed
	exitUsage   = 2 // usage or input error
)

// exitError carries an exit code out of a subcommand.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks err as a usage or input error (exit 2).
func usageErr(err error) error { return &exitError{code: exitUsage, err: err} }

// stdio bundles the streams a command talks to.
type stdio struct {
	in       io.Reader
	out, err io.Writer
}

// run is the whole program; tests call it directly.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	io := stdio{in: stdin, out: stdout, err: stderr}
	root := newRootCmd(io)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "sentineldf:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "sentineldf:", err)
	// Cobra's own errors (unknown flag, bad args) are usage errors.
	return exitUsage
}

func newRootCmd(io stdio) *cobra.Command {
	root := &cobra.Command{
		Use:           "sentineldf",
		Short:         "A data firewall for LLM training data",
		Long:          "SentinelDF finds poisoned or malicious samples in LLM training data, explains each finding,\nsplits the data into clean and quarantined parts, and signs a verifiable record (MBOM) of the scan.",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// --cpuprofile is for measuring the binary itself (docs/benchmarks.md).
	var cpuprofile string
	var stopProfile func()
	root.PersistentFlags().StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile to `FILE`")
	_ = root.PersistentFlags().MarkHidden("cpuprofile")
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		if cpuprofile == "" {
			return nil
		}
		f, err := os.Create(cpuprofile)
		if err != nil {
			return usageErr(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return usageErr(err)
		}
		stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
		return nil
	}
	root.PersistentPostRun = func(cmd *cobra.Command, args []string) {
		if stopProfile != nil {
			stopProfile()
		}
	}
	root.AddCommand(
		newScanCmd(io),
		newKeysCmd(io),
		newMbomCmd(io),
		newEvalCmd(io),
		newTrainCmd(io),
		newCloudCmd(io),
		newServeCmd(io),
		newAdminCmd(io),
		newAPICmd(io),
		newWorkerCmd(io),
		newMigrateCmd(io),
	)
	return root
}
