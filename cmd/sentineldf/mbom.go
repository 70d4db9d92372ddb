package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sentineldf/sentineldf/mbom"
)

// newMbomCmd is `sentineldf mbom`: verify, prove and show signed scan records.
func newMbomCmd(io stdio) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mbom",
		Short: "Verify, prove and show MBOMs (signed scan records)",
	}
	cmd.AddCommand(newMbomVerifyCmd(io), newMbomProveCmd(io), newMbomShowCmd(io))
	return cmd
}

// mbomErr maps a verification failure to exit 1 and anything else (missing
// or unreadable files) to exit 2. It returns nil for nil.
func mbomErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, mbom.ErrInvalid) {
		return &exitError{code: exitFinding, err: err}
	}
	return usageErr(err)
}

// ctxReader stops a long streaming read when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func readPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	pub, err := mbom.LoadPublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// checkResults runs mbom.VerifyResults over the file at path.
func checkResults(ctx context.Context, s *mbom.Statement, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return usageErr(fmt.Errorf("results: %w", err))
	}
	defer f.Close()
	return mbomErr(mbom.VerifyResults(s, ctxReader{ctx, f}))
}

func newMbomVerifyCmd(io stdio) *cobra.Command {
	var (
		pubPath, resultsPath, proofPath string
		datasets                        []string
	)
	cmd := &cobra.Command{
		Use:   "verify MBOM --public-key FILE [--results FILE] [--dataset PATH]... [--proof FILE]",
		Short: "Verify an MBOM's signature and, optionally, its results, dataset and an inclusion proof",
		Long: "Verify that MBOM was signed by the holder of the private key of --public-key. With --results,\n" +
			"also check that the results file is the one signed (digest, Merkle root, counts); with --dataset\n" +
			"(repeatable; files or directories), that the files are exactly the scanned inputs; with --proof,\n" +
			"that the inclusion proof (from `sentineldf mbom prove`) leads to the signed Merkle root.\n" +
			"Exit 0 when everything is valid, 1 when something does not match, 2 on usage or input errors.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			env, err := os.ReadFile(args[0])
			if err != nil {
				return usageErr(fmt.Errorf("mbom: %w", err))
			}
			pub, err := readPublicKey(pubPath)
			if err != nil {
				return usageErr(err)
			}
			var proof *mbom.Proof
			if proofPath != "" {
				if proof, err = readProof(proofPath); err != nil {
					return usageErr(err)
				}
			}
			s, err := mbom.Verify(env, pub)
			if err != nil {
				return mbomErr(err)
			}
			var checked []string
			if resultsPath != "" {
				if err := checkResults(ctx, s, resultsPath); err != nil {
					return err
				}
				checked = append(checked, "results")
			}
			if len(datasets) > 0 {
				if err := mbom.VerifyDataset(s, datasets); err != nil {
					return mbomErr(err)
				}
				checked = append(checked, fmt.Sprintf("dataset (%d inputs)", len(s.Predicate.Inputs)))
			}
			if proof != nil {
				if err := mbom.VerifyProof(s, proof); err != nil {
					return mbomErr(err)
				}
				checked = append(checked, fmt.Sprintf("proof for %q (band %s, risk %d)", proof.ID, proof.Leaf.Band, proof.Leaf.Risk))
			}
			keyID, _ := mbom.KeyID(pub)
			p := &s.Predicate
			fmt.Fprintf(io.out, "valid: %d documents (clean %d, elevated %d, quarantine %d; %d malformed)\n",
				p.Documents, p.Counts.Clean, p.Counts.Elevated, p.Counts.Quarantine, p.Malformed)
			fmt.Fprintf(io.out, "  signed by:   %s\n", keyID)
			fmt.Fprintf(io.out, "  merkle root: %s\n", p.Merkle.Root)
			fmt.Fprintf(io.out, "  results:     %s\n", p.Results.Name)
			fmt.Fprintf(io.out, "  approver:    %s\n", p.Approver)
			fmt.Fprintf(io.out, "  timestamp:   %s\n", p.Timestamp)
			fmt.Fprintf(io.out, "  scanner:     %s %s (ruleset %s)\n", p.Scanner.Name, p.Scanner.Version, p.Engine.RulesetVersion)
			if len(checked) > 0 {
				fmt.Fprintf(io.out, "  checked:     signature, %s\n", strings.Join(checked, ", "))
			} else {
				fmt.Fprintf(io.out, "  checked:     signature only (pass --results / --dataset to check the files)\n")
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&pubPath, "public-key", "", "PEM public key of the signer (signing.pub)")
	f.StringVar(&resultsPath, "results", "", "results JSONL file to check against the MBOM")
	f.StringArrayVar(&datasets, "dataset", nil, "input file or directory to check against the MBOM (repeatable)")
	f.StringVar(&proofPath, "proof", "", "inclusion proof JSON to check against the MBOM")
	_ = cmd.MarkFlagRequired("public-key")
	return cmd
}

func readProof(path string) (*mbom.Proof, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("proof: %w", err)
	}
	var p mbom.Proof
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("proof %s: %w", path, err)
	}
	return &p, nil
}

func newMbomProveCmd(io stdio) *cobra.Command {
	var (
		resultsPath, id, outPath, pubPath string
		index                             int64
	)
	cmd := &cobra.Command{
		Use:   "prove MBOM --results FILE (--id ID | --index N) [--out FILE]",
		Short: "Print the Merkle inclusion proof of one document's result",
		Long: "Compute the inclusion proof of the result with the given document id (its first occurrence)\n" +
			"(or at the given 0-based --index, when ids repeat) from the results file, after checking\n" +
			"that the results lead to the Merkle root in MBOM.\n" +
			"The proof lets anyone check that one verdict is part of the signed scan without the\n" +
			"rest of the results: `sentineldf mbom verify MBOM --public-key K --proof FILE`.\n" +
			"MBOM's signature is checked only when --public-key is given.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			idSet, indexSet := cmd.Flags().Changed("id"), cmd.Flags().Changed("index")
			if idSet == indexSet {
				return usageErr(errors.New("prove: give exactly one of --id and --index"))
			}
			env, err := os.ReadFile(args[0])
			if err != nil {
				return usageErr(fmt.Errorf("mbom: %w", err))
			}
			var s *mbom.Statement
			if pubPath != "" {
				pub, err := readPublicKey(pubPath)
				if err != nil {
					return usageErr(err)
				}
				s, err = mbom.Verify(env, pub)
				if err != nil {
					return mbomErr(err)
				}
			} else if s, err = mbom.Decode(env); err != nil {
				return mbomErr(err)
			}
			f, err := os.Open(resultsPath)
			if err != nil {
				return usageErr(fmt.Errorf("results: %w", err))
			}
			defer f.Close()
			var p *mbom.Proof
			if idSet {
				p, err = mbom.Prove(ctxReader{cmd.Context(), f}, id)
			} else {
				p, err = mbom.ProveIndex(ctxReader{cmd.Context(), f}, index)
			}
			if err != nil {
				return mbomErr(err)
			}
			if p.Root != s.Predicate.Merkle.Root || p.TreeSize != s.Predicate.Merkle.Leaves {
				return mbomErr(fmt.Errorf("%w: results %s do not match the MBOM: %d results with root %s, signed %d with root %s",
					mbom.ErrInvalid, resultsPath, p.TreeSize, p.Root, s.Predicate.Merkle.Leaves, s.Predicate.Merkle.Root))
			}
			if err := mbom.VerifyProof(s, p); err != nil {
				return mbomErr(err)
			}
			out, err := json.MarshalIndent(p, "", "  ")
			if err != nil {
				return err
			}
			out = append(out, '\n')
			if outPath == "" {
				_, err = io.out.Write(out)
				return err
			}
			if err := os.WriteFile(outPath, out, 0o644); err != nil {
				return usageErr(fmt.Errorf("write proof: %w", err))
			}
			fmt.Fprintf(io.err, "wrote proof for %q (index %d of %d) to %s\n", p.ID, p.Index, p.TreeSize, outPath)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&resultsPath, "results", "", "results JSONL file of the scan")
	f.StringVar(&id, "id", "", "document id to prove (its first occurrence)")
	f.Int64Var(&index, "index", 0, "0-based position in the results of the document to prove (instead of --id)")
	f.StringVar(&outPath, "out", "", "write the proof to FILE instead of standard output")
	f.StringVar(&pubPath, "public-key", "", "also verify MBOM's signature with this PEM public key")
	_ = cmd.MarkFlagRequired("results")
	return cmd
}

func newMbomShowCmd(io stdio) *cobra.Command {
	return &cobra.Command{
		Use:   "show MBOM",
		Short: "Print an MBOM's statement WITHOUT verifying its signature",
		Long: "Decode and print the in-toto statement inside MBOM. The signature is NOT checked:\n" +
			"use `sentineldf mbom verify` before trusting anything it says.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := os.ReadFile(args[0])
			if err != nil {
				return usageErr(fmt.Errorf("mbom: %w", err))
			}
			s, err := mbom.Decode(env)
			if err != nil {
				return mbomErr(err)
			}
			out, err := json.MarshalIndent(s, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintln(io.err, "UNVERIFIED: signature not checked (use `sentineldf mbom verify`)")
			_, err = fmt.Fprintf(io.out, "%s\n", out)
			return err
		},
	}
}
