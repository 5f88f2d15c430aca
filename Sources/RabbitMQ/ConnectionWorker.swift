internal import CRabbitMQ
import Foundation
import Logging

/// Everything the owning thread of a ``RabbitMQConnection`` touches.
///
/// `@unchecked Sendable` is safe because the instance crosses to its thread once, at
/// start, and is then used by that thread only; other threads reach it solely through
/// the connection's ``Mailbox``.
final class ConnectionWorker: @unchecked Sendable {
    private struct PartialDelivery {
        var tag: UInt64
        var redelivered: Bool
        var exchange: String
        var routingKey: String
        var properties = AMQPProperties()
        var bodySize = 0
        var body: [UInt8] = []
        var headerSeen = false
    }

    private static let consumeChannel: amqp_channel_t = 1
    private static let publishChannel: amqp_channel_t = 2

    private let owner: RabbitMQConnection
    private let output: DeliveryBatches
    private var logger: Logger { owner.logger }

    private var state: amqp_connection_state_t?
    private var generation: UInt64 = 0
    private var acks = AckTracker()
    private var publishSequence: UInt64 = 0
    /// No publish below this one awaits a confirm (single confirms may leave gaps above it).
    private var oldestUnconfirmed: UInt64 = 1
    private var pendingConfirms: [UInt64: RabbitMQConnection.PublishCompletion] = [:]
    /// Bindings made with `bind` and not unbound: declared again on every connect.
    private var dynamicBindings: [AMQPTopology.Binding] = []
    private var partial: PartialDelivery?
    private var skippingContent = false
    private var batch: [AMQPDelivery] = []
    private var consumerTag: [UInt8]?
    private var consumeStopped = false
    private var shutdownRequested = false

    init(connection: RabbitMQConnection, deliveries: DeliveryBatches) {
        self.owner = connection
        self.output = deliveries
    }

    deinit {
        precondition(state == nil, "AMQP connection not closed")
    }

    // MARK: Thread body

    func run() {
        let configuration = owner.configuration
        var backoff = configuration.minBackoff
        var everConnected = false
        while !shutdownRequested {
            do {
                try connect()
                if everConnected { owner.countReconnect() }
                everConnected = true
                owner.setConnected(true)
                logger.info("connected to the broker", metadata: ["amqp.connection": "\(configuration.connectionName)"])
                backoff = configuration.minBackoff
                try serve()
            } catch {
                logger.warning(
                    "broker connection failed",
                    metadata: ["amqp.connection": "\(configuration.connectionName)", "error": "\(error)", "retry.after": "\(backoff)"]
                )
                owner.setConnected(false, error: "\(error)")
            }
            teardown()
            if shutdownRequested { break }
            waitOut(backoff)
            backoff = min(backoff * 2, configuration.maxBackoff)
        }
        owner.finished()
    }

    // MARK: Connecting

    private func connect() throws {
        let configuration = owner.configuration
        guard let connection = amqp_new_connection() else { throw AMQPError.library("out of memory") }
        state = connection
        guard let socket = amqp_tcp_socket_new(connection) else { throw AMQPError.library("cannot create socket") }

        let urlBuffer = strdup(configuration.url)!
        defer { free(urlBuffer) }
        var info = amqp_connection_info()
        guard amqp_parse_url(urlBuffer, &info) == AMQP_STATUS_OK.rawValue else { throw AMQPError.invalidURL }

        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        guard amqp_socket_open_noblock(socket, info.host, info.port, &timeout) == AMQP_STATUS_OK.rawValue else {
            throw AMQPError.connectionFailed
        }

        let arena = CArena()
        var properties = arena.table(AMQPTable([.init(key: "connection_name", value: .text(configuration.connectionName))]))
        // rabbitmq-c reads "amqp://host/" as the empty vhost; RabbitMQ's default is "/".
        let vhost = info.vhost.map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/"
        let reply = notice_amqp_login_plain(
            connection,
            vhost,
            0,
            131_072,
            Int32(configuration.heartbeatSeconds),
            &properties,
            info.user,
            info.password
        )
        try check(reply, "login")

        amqp_channel_open(connection, Self.consumeChannel)
        try check(amqp_get_rpc_reply(connection), "channel.open")
        try declare(owner.topology, on: connection, arena: arena)
        try declare(AMQPTopology(bindings: dynamicBindings), on: connection, arena: arena)

        amqp_channel_open(connection, Self.publishChannel)
        try check(amqp_get_rpc_reply(connection), "channel.open")
        amqp_confirm_select(connection, Self.publishChannel)
        try check(amqp_get_rpc_reply(connection), "confirm.select")

        generation += 1
        // Deliveries of the lost connection not yet taken by the consumer are void: the broker
        // redelivers them on this one. Kept, they could share a batch with their own redelivered
        // copies, and a record without an id would then be stored twice under two new ids.
        output.dropPending()
        acks = AckTracker()
        publishSequence = 0
        oldestUnconfirmed = 1
        partial = nil
        skippingContent = false

        if let queue = owner.topology.consume, !consumeStopped {
            amqp_basic_qos(connection, Self.consumeChannel, 0, configuration.prefetch, 0)
            try check(amqp_get_rpc_reply(connection), "basic.qos")
            let ok = amqp_basic_consume(connection, Self.consumeChannel, arena.bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table)
            try check(amqp_get_rpc_reply(connection), "basic.consume")
            consumerTag = ok.map { [UInt8]($0.pointee.consumer_tag) }
        }
    }

    private func declare(_ topology: AMQPTopology, on connection: amqp_connection_state_t, arena: CArena) throws {
        for exchange in topology.exchanges {
            amqp_exchange_declare(
                connection,
                Self.consumeChannel,
                arena.bytes(exchange.name),
                arena.bytes(exchange.type),
                0,
                exchange.durable ? 1 : 0,
                0,
                0,
                amqp_empty_table
            )
            try check(amqp_get_rpc_reply(connection), "exchange.declare \(exchange.name)")
        }
        for queue in topology.queues {
            amqp_queue_declare(
                connection,
                Self.consumeChannel,
                arena.bytes(queue.name),
                0,
                queue.durable ? 1 : 0,
                queue.exclusive ? 1 : 0,
                queue.autoDelete ? 1 : 0,
                amqp_empty_table
            )
            try check(amqp_get_rpc_reply(connection), "queue.declare \(queue.name)")
        }
        for binding in topology.bindings {
            amqp_queue_bind(
                connection,
                Self.consumeChannel,
                arena.bytes(binding.queue),
                arena.bytes(binding.exchange),
                arena.bytes(binding.routingKey),
                amqp_empty_table
            )
            try check(amqp_get_rpc_reply(connection), "queue.bind \(binding.queue)")
        }
    }

    private func check(_ reply: amqp_rpc_reply_t, _ operation: String) throws {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            throw AMQPError.library("\(operation): \(String(cString: amqp_error_string2(reply.library_error)))")
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            switch reply.reply.id {
            case notice_amqp_connection_close_method():
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                throw AMQPError.brokerClosed("\(operation): \(close.reply_code) \(String(close.reply_text))")
            case notice_amqp_channel_close_method():
                let close = reply.reply.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                throw AMQPError.brokerClosed("\(operation): \(close.reply_code) \(String(close.reply_text))")
            default:
                throw AMQPError.brokerClosed("\(operation): unexpected method \(reply.reply.id)")
            }
        default:
            throw AMQPError.library("\(operation): no reply")
        }
    }

    // MARK: Serving

    private func serve() throws {
        guard let connection = state else { return }
        let socket = amqp_get_sockfd(connection)
        let heartbeat = owner.configuration.heartbeatSeconds
        let pollMillis: Int32 = heartbeat > 0 ? Int32(min(1000, heartbeat * 250)) : 1000
        var fds = [pollfd(fd: socket, events: Int16(POLLIN), revents: 0), pollfd(fd: owner.mailbox.eventFD, events: Int16(POLLIN), revents: 0)]
        while true {
            try process(owner.mailbox.take(), connection: connection)
            try flushAcks(connection)
            if shutdownRequested { return }
            try readFrames(connection)
            if !batch.isEmpty {
                output.yield(batch)
                batch = []
            }
            if amqp_frames_enqueued(connection) != 0 || amqp_data_in_buffer(connection) != 0 { continue }
            fds[0].revents = 0
            fds[1].revents = 0
            _ = poll(&fds, 2, pollMillis)
        }
    }

    private func readFrames(_ connection: amqp_connection_state_t) throws {
        var immediately = timeval(tv_sec: 0, tv_usec: 0)
        var frame = amqp_frame_t()
        // Bounded, so acks and publishes are not starved by a full socket.
        for _ in 0..<4096 {
            let status = amqp_simple_wait_frame_noblock(connection, &frame, &immediately)
            if status == AMQP_STATUS_TIMEOUT.rawValue { break }
            guard status == AMQP_STATUS_OK.rawValue else {
                throw AMQPError.library(String(cString: amqp_error_string2(status)))
            }
            try handle(frame, connection: connection)
        }
        amqp_maybe_release_buffers(connection)
    }

    private func handle(_ frame: amqp_frame_t, connection: amqp_connection_state_t) throws {
        switch Int32(frame.frame_type) {
        case AMQP_FRAME_METHOD:
            let method = frame.payload.method
            switch method.id {
            case notice_amqp_basic_deliver_method():
                let deliver = method.decoded.assumingMemoryBound(to: amqp_basic_deliver_t.self).pointee
                partial = PartialDelivery(
                    tag: deliver.delivery_tag,
                    redelivered: deliver.redelivered != 0,
                    exchange: String(deliver.exchange),
                    routingKey: String(deliver.routing_key)
                )
                skippingContent = false
            case notice_amqp_basic_return_method():
                skippingContent = true
            case notice_amqp_basic_ack_method():
                let ack = method.decoded.assumingMemoryBound(to: amqp_basic_ack_t.self).pointee
                confirm(upTo: ack.delivery_tag, multiple: ack.multiple != 0, result: nil)
            case notice_amqp_basic_nack_method():
                let nack = method.decoded.assumingMemoryBound(to: amqp_basic_nack_t.self).pointee
                confirm(upTo: nack.delivery_tag, multiple: nack.multiple != 0, result: AMQPError.publishNacked)
            case notice_amqp_basic_cancel_method():
                throw AMQPError.brokerClosed("the broker cancelled the consumer")
            case notice_amqp_channel_close_method():
                let close = method.decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                throw AMQPError.brokerClosed("channel \(frame.channel): \(close.reply_code) \(String(close.reply_text))")
            case notice_amqp_connection_close_method():
                let close = method.decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                var ok = amqp_connection_close_ok_t(dummy: 0)
                amqp_send_method(connection, 0, notice_amqp_connection_close_ok_method(), &ok)
                throw AMQPError.brokerClosed("\(close.reply_code) \(String(close.reply_text))")
            case notice_amqp_connection_blocked_method():
                logger.warning("the broker blocked publishing (resource alarm)")
            case notice_amqp_connection_unblocked_method():
                logger.info("the broker unblocked publishing")
            default:
                break
            }
        case AMQP_FRAME_HEADER:
            guard !skippingContent, var delivery = partial, !delivery.headerSeen else { return }
            let header = frame.payload.properties
            delivery.properties = AMQPProperties(header.decoded.assumingMemoryBound(to: amqp_basic_properties_t.self).pointee)
            // The size is the broker's word, a 64-bit number: bounded before it sizes anything.
            delivery.bodySize = Int(clamping: header.body_size)
            delivery.headerSeen = true
            delivery.body.reserveCapacity(min(delivery.bodySize, 1 << 20))
            partial = delivery
            if delivery.bodySize == 0 { complete() }
        case AMQP_FRAME_BODY:
            guard !skippingContent, partial?.headerSeen == true else { return }
            partial!.body.append(contentsOf: [UInt8](frame.payload.body_fragment))
            if partial!.body.count >= partial!.bodySize { complete() }
        default:
            break
        }
    }

    private func complete() {
        guard let delivery = partial else { return }
        partial = nil
        batch.append(
            AMQPDelivery(
                tag: DeliveryTag(connection: generation, value: delivery.tag),
                redelivered: delivery.redelivered,
                exchange: delivery.exchange,
                routingKey: delivery.routingKey,
                message: AMQPMessage(body: delivery.body, properties: delivery.properties)
            )
        )
    }

    private func confirm(upTo tag: UInt64, multiple: Bool, result error: AMQPError?) {
        let result: Result<Void, any Error> = error.map { .failure($0) } ?? .success(())
        guard multiple else {
            pendingConfirms.removeValue(forKey: tag)?(result)
            return
        }
        // Sequence numbers are consecutive from 1 on each connection and every one below
        // `oldestUnconfirmed` is settled, so this visits each publish once over the connection's life.
        while oldestUnconfirmed <= min(tag, publishSequence) {
            pendingConfirms.removeValue(forKey: oldestUnconfirmed)?(result)
            oldestUnconfirmed += 1
        }
    }

    private func flushAcks(_ connection: amqp_connection_state_t) throws {
        guard let upTo = acks.nextAck() else { return }
        let status = amqp_basic_ack(connection, Self.consumeChannel, upTo, 1)
        guard status == AMQP_STATUS_OK.rawValue else {
            throw AMQPError.library("basic.ack: \(String(cString: amqp_error_string2(status)))")
        }
    }

    // MARK: Commands

    /// Carries out commands; `connection` is nil while disconnected. When one of them loses the
    /// connection, the ones behind it are carried out as while disconnected (publishes fail,
    /// bindings wait for the next connect, waiters resume) before the error is thrown: none is
    /// dropped, so no caller waits for ever.
    private func process(_ commands: [Mailbox.Command], connection: amqp_connection_state_t?) throws {
        for (index, command) in commands.enumerated() {
            do {
                try perform(command, connection: connection)
            } catch {
                for rest in commands[(index + 1)...] { try? perform(rest, connection: nil) }
                throw error
            }
        }
    }

    /// A name that fits AMQP's short string, or the error its command fails with.
    private static func checkShort(_ names: (String, String)...) -> AMQPError? {
        names.first { $0.1.utf8.count > 255 }.map { AMQPError.tooLong($0.0) }
    }

    private func perform(_ command: Mailbox.Command, connection: amqp_connection_state_t?) throws {
        switch command {
        case .settle(let tags):
            for tag in tags where tag.connection == generation && connection != nil {
                acks.settle(tag.value)
            }
        case .publish(let message, let exchange, let routingKey, let completion):
            if let error = Self.checkShort(("exchange", exchange), ("routing key", routingKey)) {
                completion(.failure(error))
                return
            }
            guard let connection else {
                completion(.failure(AMQPError.notConnected))
                return
            }
            let arena = CArena()
            var properties = arena.properties(message.properties)
            let status = amqp_basic_publish(
                connection,
                Self.publishChannel,
                arena.bytes(exchange),
                arena.bytes(routingKey),
                0,
                0,
                &properties,
                arena.bytes(message.body)
            )
            guard status == AMQP_STATUS_OK.rawValue else {
                completion(.failure(AMQPError.notConnected))
                throw AMQPError.library("basic.publish: \(String(cString: amqp_error_string2(status)))")
            }
            publishSequence += 1
            pendingConfirms[publishSequence] = completion
        case .bind(let binding, let unbind, let continuation):
            if let error = Self.checkShort(("queue", binding.queue), ("exchange", binding.exchange), ("routing key", binding.routingKey)) {
                continuation.resume(throwing: error)
                return
            }
            dynamicBindings.removeAll { $0 == binding }
            if !unbind { dynamicBindings.append(binding) }
            guard let connection else {
                // Applied on the next connect.
                continuation.resume()
                return
            }
            let arena = CArena()
            if unbind {
                amqp_queue_unbind(
                    connection,
                    Self.consumeChannel,
                    arena.bytes(binding.queue),
                    arena.bytes(binding.exchange),
                    arena.bytes(binding.routingKey),
                    amqp_empty_table
                )
            } else {
                amqp_queue_bind(
                    connection,
                    Self.consumeChannel,
                    arena.bytes(binding.queue),
                    arena.bytes(binding.exchange),
                    arena.bytes(binding.routingKey),
                    amqp_empty_table
                )
            }
            do {
                try check(amqp_get_rpc_reply(connection), unbind ? "queue.unbind" : "queue.bind")
                continuation.resume()
            } catch {
                // Refused (no such queue or exchange): not declared again on every connect,
                // where it would fail each time and never let the connection stay up.
                if !unbind { dynamicBindings.removeAll { $0 == binding } }
                continuation.resume(throwing: error)
                throw error
            }
        case .stopConsuming(let continuation):
            consumeStopped = true
            defer {
                // Everything delivered before cancel-ok has been yielded: end the stream.
                output.finish()
                continuation.resume()
            }
            if let connection, let tag = consumerTag {
                consumerTag = nil
                let arena = CArena()
                amqp_basic_cancel(connection, Self.consumeChannel, arena.bytes(tag))
                try check(amqp_get_rpc_reply(connection), "basic.cancel")
                try readFrames(connection)
                if !batch.isEmpty {
                    output.yield(batch)
                    batch = []
                }
            }
        case .shutdown:
            shutdownRequested = true
        }
    }

    /// Sleeps out a reconnect delay, still answering commands (publishes fail fast).
    private func waitOut(_ delay: Duration) {
        let deadline = ContinuousClock.now + delay
        var fds = [pollfd(fd: owner.mailbox.eventFD, events: Int16(POLLIN), revents: 0)]
        while !shutdownRequested {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { return }
            let millis = Int32(min(remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000, 1000))
            fds[0].revents = 0
            _ = poll(&fds, 1, max(millis, 1))
            try? process(owner.mailbox.take(), connection: nil)
        }
    }

    private func teardown() {
        for completion in pendingConfirms.values { completion(.failure(AMQPError.notConnected)) }
        pendingConfirms = [:]
        partial = nil
        batch = []
        consumerTag = nil
        guard let connection = state else { return }
        state = nil
        if shutdownRequested {
            amqp_channel_close(connection, Self.publishChannel, Int32(AMQP_REPLY_SUCCESS))
            amqp_channel_close(connection, Self.consumeChannel, Int32(AMQP_REPLY_SUCCESS))
            amqp_connection_close(connection, Int32(AMQP_REPLY_SUCCESS))
        }
        amqp_destroy_connection(connection)
    }
}
