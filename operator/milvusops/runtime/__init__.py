"""The running operator: Kopf handlers, per-object workers, one pass (observe -> plan -> apply -> status)."""
