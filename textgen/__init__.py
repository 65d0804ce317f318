"""What every part of textgen shares, services and clients alike: the generated contracts (textgen.v1, made by
protos/build.py), where each service listens (textgen.endpoints) and where the repository's files and model
folders are (textgen.paths); and the client side (textgen.client: a Python client and the `textgen` command).

    from textgen.v1 import baseline_pb2, baseline_pb2_grpc
"""
