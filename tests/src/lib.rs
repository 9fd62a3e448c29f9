//! Cross-crate tests live in tests/tests; shared vectors in tests/vectors.
