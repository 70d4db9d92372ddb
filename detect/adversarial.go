package detect

// STUB: replaced by the real detector.

type adversarialDetector struct{}

func newAdversarialDetector() Detector { return adversarialDetector{} }

func (adversarialDetector) Name() string { return "adversarial" }

func (adversarialDetector) Detect(t *Text, emit func(Finding)) {}
