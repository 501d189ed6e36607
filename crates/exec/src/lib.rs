//! The bounded runner: placeholder until the runner work lands.
