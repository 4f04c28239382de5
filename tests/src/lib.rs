//! Integration and golden-file tests for veil live in `tests/`.
