"""A gRPC server for the HTTP/2 tests (grpcio, no generated code: raw bytes messages).

test.Echo/Unary answers b"echo:" + request with a trailing metadata entry, Bidi answers
each message as it comes, Fail aborts with PERMISSION_DENIED. Prints its port, then serves.
"""

from concurrent import futures

import grpc


def unary(request, context):
    context.set_trailing_metadata((("x-trailer", "yes"),))
    return b"echo:" + request


def bidi(requests, context):
    for message in requests:
        yield b"s:" + message


def fail(request, context):
    context.abort(grpc.StatusCode.PERMISSION_DENIED, "nope")


handler = grpc.method_handlers_generic_handler(
    "test.Echo",
    {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    },
)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
server.wait_for_termination()
