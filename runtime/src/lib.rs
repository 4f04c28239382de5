//! veil runtime.
