"""Pure: the spec, observed and status types, and every decision made from them; no I/O, no client library."""
