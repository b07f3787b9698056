"""The deterministic engine (docs/SPEC.md section 4): the integer op profile (ops), loading and
refusing ONNX graphs (graph), programs (program), traces with checkpoints, roots and
openings (trace), compiled float64 steps proven exact (compiled, SPEC 4.7), self-tested fast
kernels (fastpath, fastpath_elementwise) and their remembered verdicts (verdicts).

May import: verifier.core, verifier.commit.commitments.
"""
