internal import CRabbitMQ
import Foundation
import Logging

// `timeval` comes through Dispatch's C module on Linux: the member-import check wants it named.
#if canImport(CDispatch)
import CDispatch
#endif

/// Everything the owning thread of a ``RabbitMQConnection`` touches: it runs the socket,
/// the commands and the reconnects, and leaves the bookkeeping to ``ConnectionSetup``,
/// ``DeliveryAssembler``, ``PublishConfirms`` and ``AckTracker``.
///
/// `@unchecked Sendable` is safe because the instance crosses to its thread once, at
/// start, and is then used by that thread only; other threads reach it solely through
/// the connection's ``Mailbox``.
final class ConnectionWorker: @unchecked Sendable {
    private let owner: RabbitMQConnection
    private let output: DeliveryBatches
    private var logger: Logger { owner.logger }

    private var state: amqp_connection_state_t?
    private var setup: ConnectionSetup
    private var generation: UInt64 = 0
    private var acks = AckTracker()
    private var confirms = PublishConfirms<RabbitMQConnection.PublishCompletion>()
    private var assembler = DeliveryAssembler(connection: 0)
    private var consumerTag: [UInt8]?
    private var consumeStopped = false
    private var shutdownRequested = false

    init(connection: RabbitMQConnection, deliveries: DeliveryBatches) {
        self.owner = connection
        self.output = deliveries
        self.setup = ConnectionSetup(configuration: connection.configuration, topology: connection.topology)
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
        guard let connection = amqp_new_connection() else { throw AMQPError.library("out of memory") }
        state = connection
        let arena = CArena()
        try setup.logIn(on: connection, arena: arena)
        for step in setup.channelSteps { try step.run(on: connection, arena: arena) }

        generation += 1
        // Deliveries of the lost connection not yet taken by the consumer are void: the broker
        // redelivers them on this one. Kept, they could share a batch with their own redelivered
        // copies, and a record without an id would then be stored twice under two new ids.
        output.dropPending()
        acks = AckTracker()
        assembler = DeliveryAssembler(connection: generation)

        for step in setup.consumeSteps(stopped: consumeStopped) {
            if let tag = try step.run(on: connection, arena: arena) { consumerTag = tag }
        }
    }

    // MARK: Serving

    private func serve() throws {
        guard let connection = state else { return }
        let socket = amqp_get_sockfd(connection)
        let heartbeat = owner.configuration.heartbeatSeconds
        let pollMillis: Int32 = heartbeat > 0 ? Int32(min(4, heartbeat) * 250) : 1000
        var fds = [pollfd(fd: socket, events: Int16(POLLIN), revents: 0), pollfd(fd: owner.mailbox.eventFD, events: Int16(POLLIN), revents: 0)]
        while true {
            try process(owner.mailbox.take(), connection: connection)
            try flushAcks(connection)
            if shutdownRequested { return }
            try readFrames(connection)
            yieldDeliveries()
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

    private func yieldDeliveries() {
        let batch = assembler.takeCompleted()
        if !batch.isEmpty { output.yield(batch) }
    }

    private func handle(_ frame: amqp_frame_t, connection: amqp_connection_state_t) throws {
        switch IncomingFrame(frame) {
        case .deliver(let tag, let redelivered, let exchange, let routingKey):
            assembler.deliver(tag: tag, redelivered: redelivered, exchange: exchange, routingKey: routingKey)
        case .returned:
            assembler.returned()
        case .header(let properties, let bodySize):
            assembler.header(properties, bodySize: bodySize)
        case .body(let fragment):
            assembler.body(fragment)
        case .ack(let tag, let multiple):
            for completion in confirms.confirm(tag, multiple: multiple) { completion(.success(())) }
        case .nack(let tag, let multiple):
            for completion in confirms.confirm(tag, multiple: multiple) { completion(.failure(AMQPError.publishNacked)) }
        case .consumerCancelled:
            throw AMQPError.brokerClosed("the broker cancelled the consumer")
        case .channelClosed(let channel, let code, let text):
            throw AMQPError.brokerClosed("channel \(channel): \(code) \(text)")
        case .connectionClosed(let code, let text):
            var ok = amqp_connection_close_ok_t(dummy: 0)
            amqp_send_method(connection, 0, notice_amqp_connection_close_ok_method(), &ok)
            throw AMQPError.brokerClosed("\(code) \(text)")
        case .blocked:
            logger.warning("the broker blocked publishing (resource alarm)")
        case .unblocked:
            logger.info("the broker unblocked publishing")
        case .other:
            break
        }
    }

    private func flushAcks(_ connection: amqp_connection_state_t) throws {
        guard let upTo = acks.nextAck() else { return }
        let status = amqp_basic_ack(connection, ConnectionSetup.consumeChannel, upTo, 1)
        guard status == AMQP_STATUS_OK.rawValue else { throw AMQPError.library("basic.ack", status: status) }
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

    private func perform(_ command: Mailbox.Command, connection: amqp_connection_state_t?) throws {
        switch command {
        case .settle(let tags):
            for tag in tags where tag.connection == generation && connection != nil {
                acks.settle(tag.value)
            }
        case .publish(let message, let exchange, let routingKey, let completion):
            if let error = ConnectionSetup.checkPublish(exchange: exchange, routingKey: routingKey) {
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
                ConnectionSetup.publishChannel,
                arena.bytes(exchange),
                arena.bytes(routingKey),
                0,
                0,
                &properties,
                arena.bytes(message.body)
            )
            guard status == AMQP_STATUS_OK.rawValue else {
                completion(.failure(AMQPError.notConnected))
                throw AMQPError.library("basic.publish", status: status)
            }
            confirms.published(completion)
        case .bind(let binding, let unbind, let continuation):
            let step: ConnectionSetup.Step
            switch setup.bindCommand(binding, unbind: unbind) {
            case .success(let bindStep): step = bindStep
            case .failure(let error):
                continuation.resume(throwing: error)
                return
            }
            guard let connection else {
                // Applied on the next connect.
                continuation.resume()
                return
            }
            do {
                try step.run(on: connection, arena: CArena())
                continuation.resume()
            } catch {
                if !unbind { setup.refused(binding) }
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
                try ConnectionSetup.cancel(consumerTag: tag).run(on: connection, arena: CArena())
                try readFrames(connection)
                yieldDeliveries()
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
        for completion in confirms.connectionLost() { completion(.failure(AMQPError.notConnected)) }
        assembler.discard()
        consumerTag = nil
        guard let connection = state else { return }
        state = nil
        if shutdownRequested {
            amqp_channel_close(connection, ConnectionSetup.publishChannel, Int32(AMQP_REPLY_SUCCESS))
            amqp_channel_close(connection, ConnectionSetup.consumeChannel, Int32(AMQP_REPLY_SUCCESS))
            amqp_connection_close(connection, Int32(AMQP_REPLY_SUCCESS))
        }
        amqp_destroy_connection(connection)
    }
}
