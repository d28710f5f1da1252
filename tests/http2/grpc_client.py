"""A gRPC client for the HTTP/2 tests: unary (small and 1 MB, with trailing metadata),
bidirectional streaming, and an error status, against the address in argv[1]."""

import sys

import grpc

channel = grpc.insecure_channel(sys.argv[1])
unary = channel.unary_unary("/test.Echo/Unary")
response, call = unary.with_call(b"hi", timeout=10)
assert response == b"echo:hi", response
assert dict(call.trailing_metadata()).get("x-trailer") == "yes", call.trailing_metadata()
big = b"x" * 1_000_000
assert unary(big, timeout=10) == b"echo:" + big
bidi = channel.stream_stream("/test.Echo/Bidi")
assert list(bidi(iter([b"1", b"2", b"3"]), timeout=10)) == [b"s:1", b"s:2", b"s:3"]
try:
    channel.unary_unary("/test.Echo/Fail")(b"x", timeout=10)
    raise SystemExit("Fail did not fail")
except grpc.RpcError as e:
    assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e.code()
    assert e.details() == "nope", e.details()
print("ok")
