"""One module per `finops` sub-command; each defines `register(subparsers)`."""
