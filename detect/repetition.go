package detect

// STUB: replaced by the real detector.

type repetitionDetector struct{}

func newRepetitionDetector() Detector { return repetitionDetector{} }

func (repetitionDetector) Name() string { return "repetition" }

func (repetitionDetector) Detect(t *Text, emit func(Finding)) {}
