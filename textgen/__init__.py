"""textgen's client side: the generated contracts (textgen.v1, made by protos/build.py), a Python client and the
`textgen` command.

    from textgen.v1 import baseline_pb2, baseline_pb2_grpc
"""
