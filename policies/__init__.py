"""mcpfleet's policy pack: one set of rule functions, run by `pulumi preview --policy-pack policies` and
by the offline plan alike.

Never import `policies.__main__`: it starts the pack's gRPC server and blocks forever.
"""
