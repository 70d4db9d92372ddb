// Package worker is SentinelDF's data plane: the River workers that run an
// async scan from its confirmed uploads to its result objects.
//
// A scan runs as four kinds of jobs, each enqueued by the Store in the same
// transaction as the state change that calls for it:
//
//   - PlanJob splits the scan's input files into shards and starts the scan
//     (Store.StartScan, which enqueues one ShardJob per shard). Uncompressed
//     JSONL/NDJSON files larger than Config.ShardBytes are cut into pieces of
//     about that size, each ending just after a '\n', found by reading a
//     small range after every target offset, so a record is never split and
//     the pieces concatenated are the file. Every other file (CSV, TSV, JSON
//     arrays, Parquet, text, anything compressed) is one shard.
//   - ShardJob scans one shard with the engine alone (no dataset-level
//     detectors) and stores its results at sentineldf.ShardResultsKey, one
//     results line per document in input order, then completes the shard
//     (Store.CompleteShard records its usage exactly once and, after the last
//     shard, enqueues the FinalizeJob). The results object is overwritten by
//     a retry, so a shard run twice stores the same bytes and counts once.
//     Sources in a shard's results name the upload; for a shard that starts
//     inside a file they read "name@offset:line", line counted from the
//     shard's start.
//   - FinalizeJob runs the dataset-level pass and writes the outputs. It
//     reads every input in file order through scan.RunEngine with the
//     dataset detectors (Config.DatasetDetectors, the CLI's default), taking
//     each document's engine result from the shards' results (scan.Prior)
//     instead of scanning it again; a prior result that is not for the
//     document's exact text is ignored and the document scanned, so the
//     results never depend on the shards. The outputs are therefore
//     byte-identical to `sentineldf scan` of the same files under their
//     upload names. It stores, under ScanPrefix + "results/":
//     results.jsonl (one line per document, as `scan --out`); clean and
//     quarantine (the original records split by verdict: for a scan of one
//     file, a file in that file's format and compression; for several, an
//     uncompressed POSIX tar archive whose entries are the per-file splits
//     named by the files' upload names, in scan order, where a whole-file
//     text document that went to the other split has no entry);
//     summary.json (the JSON of the *scan.Summary, from which
//     Summary.Predicate gives the MBOM predicate); and malformed.jsonl (one
//     {"source","reason"} line per record that could not be read). Every
//     object is written, empty when there is nothing to put in it. Then it
//     finishes the scan (Store.FinishScan) and deletes the shards' results.
//   - CallbackJob POSTs a sentineldf.CallbackPayload to the scan's callback
//     URL, signed with sentineldf.SignCallback under the org's callback
//     secret, and fails (so River retries with backoff) on a network error
//     or a non-2xx status. Redirects are not followed, and connections to
//     loopback, private, link-local and other non-public addresses are
//     refused when they are dialled (so DNS tricks do not get around it)
//     unless Config.AllowPrivateCallbacks is set.
//
// Errors: a job whose scan is canceled or already ended does nothing. A
// problem with the scan's data (a missing input object, a file that cannot
// be read as its format) fails the scan with a message safe to show, and
// the job ends without error. Any other error is returned so that River
// retries the job; its last attempt fails the scan. A job whose context is
// canceled (a worker shutting down) returns the context's error without
// completing anything, and the job runs again later: every step is
// idempotent.
//
// Shard and finalize jobs watch their scan while they run and stop soon
// after it is canceled.
package worker
