import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// A stub RFC 7662 introspection endpoint on loopback: every token is active, its user is the
/// token's last dash-separated part (`bench-<run>-42` → `42`), valid for an hour.
enum AuthStub {
    /// Serves until the process is killed.
    static func run(port: Int, threads: Int) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(IntrospectionHandler())
                }
            }
            .bind(host: "127.0.0.1", port: port)
            .get()
        print("auth_stub_port=\(channel.localAddress?.port ?? port)")
        fflush(nil)  // all streams: stdout is a file when the script runs the stub
        try await channel.closeFuture.get()
    }
}

/// Answers each POST with `{"active":true,"sub":…,"exp":…}`.
final class IntrospectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private var body: [UInt8] = []
    private var keepAlive = true

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            keepAlive = head.isKeepAlive
            body.removeAll(keepingCapacity: true)
        case .body(let buffer):
            body.append(contentsOf: buffer.readableBytesView)
        case .end:
            respond(context: context)
        }
    }

    private func respond(context: ChannelHandlerContext) {
        let form = String(decoding: body, as: UTF8.self)
        let token = form.split(separator: "&").first { $0.hasPrefix("token=") }.map { $0.dropFirst(6) } ?? ""
        let user = token.split(separator: "-").last.map(String.init) ?? ""
        let expires = realtimeNanos() / 1_000_000_000 + 3600
        let json = #"{"active":true,"sub":"\#(user)","exp":\#(expires)}"#
        var buffer = context.channel.allocator.buffer(capacity: json.utf8.count)
        buffer.writeString(json)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(buffer.readableBytes))
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        if !keepAlive { context.close(promise: nil) }
    }
}
