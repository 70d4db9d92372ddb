package corpus

import "fmt"

// CacheIdentity says what the detector's findings depend on besides the
// documents and the code: its options (and whether it is one of a group
// made by Default). A scan reuses the outcome of an earlier scan of the same
// data only when every dataset detector's identity is unchanged (see the
// scan package's memo).
func (d *Duplicates) CacheIdentity() string { return identity(d.Name(), d.g != nil, d.o) }

// CacheIdentity is as for Duplicates.
func (d *Outliers) CacheIdentity() string { return identity(d.Name(), d.g != nil, d.o) }

// CacheIdentity is as for Duplicates.
func (d *Backdoor) CacheIdentity() string { return identity(d.Name(), d.g != nil, d.o) }

func identity(name string, grouped bool, o Options) string {
	return fmt.Sprintf("%s grouped=%t %+v", name, grouped, o)
}
