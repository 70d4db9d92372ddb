package onnx

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Runner runs a model on named inputs. Both the pure-Go Model and the ONNX
// Runtime session implement it.
type Runner interface {
	// Run evaluates the model and returns every graph output by name.
	Run(inputs map[string]Tensor) (map[string]Tensor, error)
}

var _ Session = (*Model)(nil)

// Model is a model compiled for the pure-Go evaluator. It is immutable after
// Load and safe for concurrent use.
type Model struct {
	// Proto is the decoded model file.
	Proto *ModelProto
	// Opset is the version of the default operator set the model imports.
	Opset int64

	inputs  []*ValueInfoProto // graph inputs that are not initializers
	outputs []string
	nslots  int
	slot    map[string]int
	consts  []*Tensor // by slot; nil for values computed at run time
	steps   []step
	inSlots []int // slot of each entry of inputs
	outSlot []int // slot of each entry of outputs
	folded  map[int]foldedStep
}

// step is one node, ready to run.
type step struct {
	node *NodeProto
	fn   opFunc
	in   []int // slots; -1 for an omitted optional input
	out  []int
	// bag is set for a fused Gather→Mul→ReduceSum (see fuse).
	bag *bagStep
}

// LoadOptions tune Load.
type LoadOptions struct {
	// NoFusion turns off the fused embedding-bag kernel, so every node runs
	// as written (tests compare the two).
	NoFusion bool
}

// Load decodes and compiles an ONNX model for the pure-Go evaluator:
// initializers are decoded, nodes whose inputs are all constant are
// evaluated once (so quantised tables are dequantised here, not per run),
// and known node patterns are fused into faster kernels. Unsupported
// operators fail here, with their names.
func Load(data []byte) (*Model, error) {
	return LoadWith(data, LoadOptions{})
}

// LoadWith is Load with options.
func LoadWith(data []byte, o LoadOptions) (*Model, error) {
	mp, err := Unmarshal(data)
	if err != nil {
		return nil, err
	}
	return Compile(mp, o)
}

// Compile prepares a decoded model for the pure-Go evaluator (see Load).
func Compile(mp *ModelProto, o LoadOptions) (*Model, error) {
	g := mp.Graph
	if g == nil {
		return nil, fmt.Errorf("onnx: model has no graph")
	}
	m := &Model{Proto: mp, slot: map[string]int{}}
	for _, op := range mp.OpsetImport {
		switch op.Domain {
		case "", "ai.onnx":
			m.Opset = op.Version
		default:
			// Other domains only matter if a node uses them; nodes are
			// checked one by one below.
		}
	}
	if m.Opset == 0 {
		return nil, fmt.Errorf("onnx: model imports no default-domain operator set")
	}
	slotOf := func(name string) int {
		if s, ok := m.slot[name]; ok {
			return s
		}
		s := m.nslots
		m.slot[name] = s
		m.nslots++
		m.consts = append(m.consts, nil)
		return s
	}
	for _, ip := range g.Initializer {
		t, err := TensorFromProto(ip)
		if err != nil {
			return nil, fmt.Errorf("onnx: initializer: %w", err)
		}
		m.consts[slotOf(ip.Name)] = t
	}
	for _, in := range g.Input {
		if s, ok := m.slot[in.Name]; ok && m.consts[s] != nil {
			continue // an initializer listed as an input (old IR): a constant
		}
		m.inputs = append(m.inputs, in)
		m.inSlots = append(m.inSlots, slotOf(in.Name))
	}
	defined := map[int]bool{}
	for s, c := range m.consts {
		if c != nil {
			defined[s] = true
		}
	}
	for _, s := range m.inSlots {
		defined[s] = true
	}
	for i, n := range g.Node {
		if n.Domain != "" && n.Domain != "ai.onnx" {
			return nil, fmt.Errorf("onnx: node %d (%s): operator domain %q is not supported by the pure-Go evaluator", i, n.Name, n.Domain)
		}
		fn, ok := ops[n.OpType]
		if !ok {
			return nil, fmt.Errorf("onnx: node %d (%s): operator %s is not supported by the pure-Go evaluator (supported: %s); run the model with ONNX Runtime (-tags ort)",
				i, n.Name, n.OpType, strings.Join(supportedOps(), ", "))
		}
		st := step{node: n, fn: fn}
		for _, name := range n.Input {
			if name == "" {
				st.in = append(st.in, -1)
				continue
			}
			s, ok := m.slot[name]
			if !ok || !defined[s] {
				return nil, fmt.Errorf("onnx: node %d (%s %s): input %q is not defined before it (graph not in topological order?)", i, n.OpType, n.Name, name)
			}
			st.in = append(st.in, s)
		}
		for _, name := range n.Output {
			if name == "" {
				st.out = append(st.out, -1)
				continue
			}
			if s, ok := m.slot[name]; ok && defined[s] {
				return nil, fmt.Errorf("onnx: node %d (%s %s): output %q is defined twice", i, n.OpType, n.Name, name)
			}
			s := slotOf(name)
			defined[s] = true
			st.out = append(st.out, s)
		}
		m.steps = append(m.steps, st)
	}
	for _, out := range g.Output {
		s, ok := m.slot[out.Name]
		if !ok || !defined[s] {
			return nil, fmt.Errorf("onnx: graph output %q is never computed", out.Name)
		}
		m.outputs = append(m.outputs, out.Name)
		m.outSlot = append(m.outSlot, s)
	}
	if err := m.fold(); err != nil {
		return nil, err
	}
	if !o.NoFusion {
		m.fuse()
	}
	return m, nil
}

// supportedOps lists the operators of the pure-Go evaluator.
func supportedOps() []string {
	names := make([]string, 0, len(ops))
	for k := range ops {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// fold evaluates, once, every node whose inputs are all constants.
func (m *Model) fold() error {
	m.folded = map[int]foldedStep{}
	var keep []step
	for _, st := range m.steps {
		constant := true
		in := make([]*Tensor, len(st.in))
		for i, s := range st.in {
			if s < 0 {
				continue
			}
			if m.consts[s] == nil {
				constant = false
				break
			}
			in[i] = m.consts[s]
		}
		if !constant {
			keep = append(keep, st)
			continue
		}
		out, err := m.runStep(&st, in)
		if err != nil {
			return err
		}
		for i, s := range st.out {
			if s >= 0 && i < len(out) {
				m.consts[s] = out[i]
				m.folded[s] = foldedStep{node: st.node, in: in}
			}
		}
	}
	m.steps = keep
	return nil
}

// foldedStep records how a constant was computed at load time, so that
// fusion can use the quantised original instead of the dequantised copy.
type foldedStep struct {
	node *NodeProto
	in   []*Tensor
}

// Inputs describes the inputs a run must supply.
func (m *Model) Inputs() []*ValueInfoProto { return m.inputs }

// Outputs names the graph outputs Run returns.
func (m *Model) Outputs() []string { return m.outputs }

// InputNames lists the inputs a run must supply, in graph order.
func (m *Model) InputNames() []string {
	out := make([]string, len(m.inputs))
	for i, in := range m.inputs {
		out[i] = in.Name
	}
	return out
}

// OutputNames lists the graph outputs, in graph order.
func (m *Model) OutputNames() []string { return slices.Clone(m.outputs) }

// InputInfo returns the declared element type and shape of an input, with
// -1 for axes of unknown or symbolic size.
func (m *Model) InputInfo(name string) (DataType, []int64, bool) {
	for _, in := range m.inputs {
		if in.Name != name {
			continue
		}
		shape := make([]int64, len(in.Shape))
		for i, d := range in.Shape {
			shape[i] = -1
			if d.Param == "" && d.Value > 0 {
				shape[i] = d.Value
			}
		}
		return in.ElemType, shape, true
	}
	return Undefined, nil, false
}

// Close does nothing: a Model holds no resources beyond memory. It makes
// Model a Session.
func (m *Model) Close() error { return nil }

// Run evaluates the model. Every graph input must be given with its
// declared element type and a shape compatible with the declared one.
func (m *Model) Run(inputs map[string]Tensor) (map[string]Tensor, error) {
	return m.RunContext(context.Background(), inputs)
}

// RunContext is Run, checking ctx between nodes.
func (m *Model) RunContext(ctx context.Context, inputs map[string]Tensor) (map[string]Tensor, error) {
	vals := make([]*Tensor, m.nslots)
	copy(vals, m.consts)
	for i, vi := range m.inputs {
		t, ok := inputs[vi.Name]
		if !ok {
			return nil, fmt.Errorf("onnx: missing input %q", vi.Name)
		}
		if err := checkInput(vi, &t); err != nil {
			return nil, err
		}
		vals[m.inSlots[i]] = &t
	}
	for name := range inputs {
		if !slices.ContainsFunc(m.inputs, func(v *ValueInfoProto) bool { return v.Name == name }) {
			return nil, fmt.Errorf("onnx: unknown input %q", name)
		}
	}
	in := make([]*Tensor, 0, 8)
	for i := range m.steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		st := &m.steps[i]
		in = in[:0]
		for _, s := range st.in {
			if s < 0 {
				in = append(in, nil)
			} else {
				in = append(in, vals[s])
			}
		}
		out, err := m.runStep(st, in)
		if err != nil {
			return nil, err
		}
		for j, s := range st.out {
			if s >= 0 && j < len(out) {
				vals[s] = out[j]
			}
		}
	}
	res := make(map[string]Tensor, len(m.outputs))
	for i, name := range m.outputs {
		if vals[m.outSlot[i]] == nil {
			return nil, fmt.Errorf("onnx: output %q was not produced", name)
		}
		res[name] = *vals[m.outSlot[i]]
	}
	return res, nil
}

func (m *Model) runStep(st *step, in []*Tensor) ([]*Tensor, error) {
	var out []*Tensor
	var err error
	if st.bag != nil {
		out, err = st.bag.run(in)
	} else {
		out, err = st.fn(&opCtx{node: st.node, opset: m.Opset}, in)
	}
	if err != nil {
		return nil, fmt.Errorf("onnx: %s node %q: %w", st.node.OpType, st.node.Name, err)
	}
	for _, t := range out {
		if t != nil {
			if err := t.Validate(); err != nil {
				return nil, fmt.Errorf("onnx: %s node %q produced a bad tensor: %w", st.node.OpType, st.node.Name, err)
			}
		}
	}
	return out, nil
}

// checkInput checks a run input against the graph's declaration.
func checkInput(vi *ValueInfoProto, t *Tensor) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("onnx: input %q: %w", vi.Name, err)
	}
	if vi.ElemType != Undefined && vi.ElemType != t.Type {
		return fmt.Errorf("onnx: input %q: element type %v, want %v", vi.Name, t.Type, vi.ElemType)
	}
	if vi.Shape != nil {
		if len(vi.Shape) != len(t.Shape) {
			return fmt.Errorf("onnx: input %q: rank %d (shape %v), want rank %d", vi.Name, len(t.Shape), t.Shape, len(vi.Shape))
		}
		for i, d := range vi.Shape {
			if d.Param == "" && d.Value > 0 && d.Value != t.Shape[i] {
				return fmt.Errorf("onnx: input %q: dimension %d is %d, want %d", vi.Name, i, t.Shape[i], d.Value)
			}
		}
	}
	return nil
}
