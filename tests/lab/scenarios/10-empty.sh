# No services at all: the dump must be empty, not an error.
collect
