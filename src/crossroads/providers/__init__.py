"""One adapter per upstream wire format, each with a declarative parameter table; the registry maps a wire
format to its adapter; the transport does the HTTP."""
