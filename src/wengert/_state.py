"""Per-thread recording state: grad mode and the tape being recorded."""

from __future__ import annotations

import threading


class _State(threading.local):
    def __init__(self) -> None:
        self.grad_enabled = True
        self.tape = None
        self.spare = None  # the tape retired by the last backward (see Tape.release)
        self.trace = None  # the tape being traced by wengert.trace / value_and_grad
        self.guards = None  # (entry, observed value) read by Python while tracing


STATE = _State()
