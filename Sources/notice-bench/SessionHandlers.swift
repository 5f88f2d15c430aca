import NIOCore
import NIOWebSocket
import STOMP
import Synchronization

/// Sends the HTTP/1.1 upgrade request, waits for `101`, then replaces itself with the
/// WebSocket frame codec and a ``StompSessionHandler``.
final class WebSocketHandshakeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let plan: SessionPlan
    private let session: StompSessionHandler
    private var response: ByteBuffer?

    init(plan: SessionPlan, session: StompSessionHandler) {
        self.plan = plan
        self.session = session
    }

    func channelActive(context: ChannelHandlerContext) {
        var request = context.channel.allocator.buffer(capacity: 256)
        request.writeBytes(plan.handshake)
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if response == nil {
            response = bytes
        } else {
            response!.writeBuffer(&bytes)
        }
        guard var response, let end = response.readableBytesView.firstRange(of: [13, 10, 13, 10]) else {
            if (response?.readableBytes ?? 0) > 16_384 { session.fail(context: context, "handshake response too large") }
            return
        }
        let headerLength = end.upperBound - response.readerIndex
        let head = response.readString(length: headerLength) ?? ""
        guard head.hasPrefix("HTTP/1.1 101") else {
            session.fail(context: context, "handshake: \(head.prefix { $0 != "\r" })")
            return
        }
        self.response = nil
        do {
            // One at a time: the session's CONNECT (sent when it is added) must find the encoder in place.
            let decoder = ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 20))
            let encoder = WebSocketFrameEncoder()
            try context.pipeline.syncOperations.addHandler(decoder, position: .after(self))
            try context.pipeline.syncOperations.addHandler(encoder, position: .after(decoder))
            try context.pipeline.syncOperations.addHandler(session, position: .after(encoder))
        } catch {
            session.fail(context: context, "pipeline: \(error)")
            return
        }
        if response.readableBytes > 0 { context.fireChannelRead(NIOAny(response)) }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        session.fail(context: context, "\(error)")
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.fail(context: context, "closed during the handshake")
        context.fireChannelInactive()
    }
}

/// One STOMP session: CONNECT on start, SUBSCRIBE (with a receipt) on CONNECTED, then a
/// latency per MESSAGE from the `sentAt` in its body. Counts itself ready at the receipt.
final class StompSessionHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    private let plan: SessionPlan
    private let user: Int
    private let recorder: LoopRecorder
    private let counters: SessionCounters
    private let openedAt: Int64
    private var connectSentAt: Int64 = 0
    private var decoder: StompDecoder?
    private var settled = false
    private var partial: ByteBuffer?
    private var pings: RepeatedTask?

    /// Web-STOMP (cowboy) closes a WebSocket that sent nothing for 60 s, which opening 10k
    /// sessions on a busy machine can take; a ping every 15 s keeps every session alive, as a
    /// browser's STOMP heart-beat or the frontend's 14 s probe would. Each session pings at its
    /// own phase, as independent browsers do: pinging every session of a loop at once made the
    /// server answer 10k pongs in one burst every 15 s, which showed as a latency stall.
    static let pingInterval = TimeAmount.seconds(15)

    init(plan: SessionPlan, user: Int, recorder: LoopRecorder, counters: SessionCounters, openedAt: Int64) {
        self.plan = plan
        self.user = user
        self.recorder = recorder
        self.counters = counters
        self.openedAt = openedAt
    }

    func handlerAdded(context: ChannelHandlerContext) {
        recorder.channels[ObjectIdentifier(context.channel)] = context.channel
        let channel = context.channel
        let phase = TimeAmount.nanoseconds(.random(in: 0..<Self.pingInterval.nanoseconds))
        pings = context.eventLoop.scheduleRepeatedTask(initialDelay: phase, delay: Self.pingInterval) { _ in
            let ping = WebSocketFrame(fin: true, opcode: .ping, maskKey: .random(), data: channel.allocator.buffer(capacity: 0))
            channel.writeAndFlush(ping, promise: nil)
        }
        connectSentAt = monotonicNanos()
        send(plan.connectFrame(user: user), context: context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary, .continuation:
            var payload = frame.unmaskedData
            if !frame.fin || partial != nil {
                if partial == nil { partial = payload } else { partial!.writeBuffer(&payload) }
                guard frame.fin else { return }
                payload = partial!
                partial = nil
            }
            stomp(payload, context: context)
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, maskKey: .random(), data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            context.close(promise: nil)
        default:
            break
        }
    }

    private func stomp(_ payload: ByteBuffer, context: ChannelHandlerContext) {
        if decoder == nil { decoder = StompDecoder(version: .v1_2, limits: .init(maxFrameBytes: 1 << 20, maxHeaders: 100)) }
        decoder!.append(payload.readableBytesView)
        do {
            while let output = try decoder!.next() {
                guard case .frame(let frame) = output else { continue }
                switch frame.command {
                case .message where frame.headers["subscription"] == SessionPlan.eventsSubscription:
                    counters.events.add(1, ordering: .relaxed)
                case .message:
                    record(frame.body)
                case .connected:
                    if plan.subscribes {
                        for bytes in plan.subscribeFrames(user: user) { send(bytes, context: context) }
                    } else {
                        let now = monotonicNanos()
                        recorder.connectLatencies.append(now - connectSentAt)
                        recorder.openLatencies.append(now - openedAt)
                        settle(ready: true)
                        context.close(promise: nil)
                    }
                case .receipt:
                    settle(ready: true)
                case .error:
                    fail(context: context, "ERROR \(frame.headers["message"] ?? "") \(frame.bodyText ?? "")")
                default:
                    break
                }
            }
        } catch {
            fail(context: context, "STOMP: \(error)")
        }
    }

    private func record(_ body: [UInt8]) {
        let receivedAt = realtimeNanos()
        counters.received.add(1, ordering: .relaxed)
        recorder.lastReceived = max(recorder.lastReceived, receivedAt)
        guard let sentAt = Self.sentAt(in: body) else { return }
        recorder.latencies.append(receivedAt - sentAt)
        recorder.receivedAt.append(receivedAt)
    }

    /// The integer after `"sentAt":` in a JSON body, without parsing the rest.
    static func sentAt(in body: [UInt8]) -> Int64? {
        let key = Array(#""sentAt":"#.utf8)
        guard let range = body.firstRange(of: key) else { return nil }
        var value: Int64 = 0
        var index = range.upperBound
        while index < body.count, body[index] == 32 { index += 1 }
        let start = index
        while index < body.count, body[index] >= 48, body[index] <= 57 {
            value = value &* 10 &+ Int64(body[index] - 48)
            index += 1
        }
        return index > start ? value : nil
    }

    private func send(_ bytes: [UInt8], context: ChannelHandlerContext) {
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        let frame = WebSocketFrame(fin: true, opcode: .text, maskKey: .random(), data: buffer)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    private func settle(ready: Bool) {
        guard !settled else { return }
        settled = true
        if ready { counters.ready.add(1, ordering: .relaxed) } else { counters.failed.add(1, ordering: .relaxed) }
    }

    /// Records why the session failed (the first reason of the loop) and closes it.
    func fail(context: ChannelHandlerContext, _ reason: String) {
        if !settled { recorder.fail("user \(user): \(reason)") }
        settle(ready: false)
        context.close(promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(context: context, "\(error)")
    }

    func channelInactive(context: ChannelHandlerContext) {
        recorder.channels[ObjectIdentifier(context.channel)] = nil
        pings?.cancel()
        pings = nil
        counters.closed.add(1, ordering: .relaxed)
        if !settled { fail(context: context, "closed by the server") }
        context.fireChannelInactive()
    }
}
