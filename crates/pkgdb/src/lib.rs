//! Package databases: placeholder until the `hostready pkg` work lands.
