internal import CRabbitMQ
import Foundation

// `timeval` comes through Dispatch's C module on Linux: the member-import check wants it named.
#if canImport(CDispatch)
import CDispatch
#endif

extension ConnectionSetup {
    /// Opens the socket to the configured URL and logs in.
    func logIn(on connection: amqp_connection_state_t, arena: CArena) throws {
        guard let socket = amqp_tcp_socket_new(connection) else { throw AMQPError.library("cannot create socket") }

        let urlBuffer = strdup(configuration.url)!
        defer { free(urlBuffer) }
        var info = amqp_connection_info()
        guard amqp_parse_url(urlBuffer, &info) == AMQP_STATUS_OK.rawValue else { throw AMQPError.invalidURL }

        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        guard amqp_socket_open_noblock(socket, info.host, info.port, &timeout) == AMQP_STATUS_OK.rawValue else {
            throw AMQPError.connectionFailed
        }

        let login = login(vhost: info.vhost.map { String(cString: $0) })
        var properties = arena.table(login.clientProperties)
        let reply = notice_amqp_login_plain(
            connection,
            login.vhost,
            0,
            login.frameMax,
            login.heartbeatSeconds,
            &properties,
            info.user,
            info.password
        )
        try AMQPError.check(reply, "login")
    }
}

extension ConnectionSetup.Step {
    /// Makes the call and waits for the broker's reply; returns the consumer tag of `basic.consume`.
    @discardableResult
    func run(on connection: amqp_connection_state_t, arena: CArena) throws -> [UInt8]? {
        var consumerTag: [UInt8]?
        switch action {
        case .openChannel:
            amqp_channel_open(connection, channel)
        case .confirmSelect:
            amqp_confirm_select(connection, channel)
        case .declareExchange(let exchange):
            amqp_exchange_declare(
                connection,
                channel,
                arena.bytes(exchange.name),
                arena.bytes(exchange.type),
                0,
                exchange.durable ? 1 : 0,
                0,
                0,
                amqp_empty_table
            )
        case .declareQueue(let queue):
            amqp_queue_declare(
                connection,
                channel,
                arena.bytes(queue.name),
                0,
                queue.durable ? 1 : 0,
                queue.exclusive ? 1 : 0,
                queue.autoDelete ? 1 : 0,
                amqp_empty_table
            )
        case .bind(let binding):
            amqp_queue_bind(
                connection,
                channel,
                arena.bytes(binding.queue),
                arena.bytes(binding.exchange),
                arena.bytes(binding.routingKey),
                amqp_empty_table
            )
        case .unbind(let binding):
            amqp_queue_unbind(
                connection,
                channel,
                arena.bytes(binding.queue),
                arena.bytes(binding.exchange),
                arena.bytes(binding.routingKey),
                amqp_empty_table
            )
        case .qos(let prefetch):
            amqp_basic_qos(connection, channel, 0, prefetch, 0)
        case .consume(let queue):
            let ok = amqp_basic_consume(connection, channel, arena.bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table)
            consumerTag = ok.map { [UInt8]($0.pointee.consumer_tag) }
        case .cancel(let consumerTag):
            amqp_basic_cancel(connection, channel, arena.bytes(consumerTag))
        }
        try AMQPError.check(amqp_get_rpc_reply(connection), operation)
        return consumerTag
    }
}
