import Hummingbird
import NIOCore

/// `GET /info`: what the server offers (`websocket`, `cookie_needed`, `origins`) and a random
/// `entropy` for the client; never cached; CORS; `OPTIONS` allowed.
extension SockJSServer {
    func addInfoRoutes(to group: RouterGroup<Context>) {
        group.get("info") { request, _ in
            let body =
                #"{"websocket":\#(self.configuration.webSocketEnabled),"cookie_needed":false,"origins":["*:*"],"entropy":\#(UInt32.random(in: 0...UInt32.max))}"#
            return Response(
                status: .ok,
                headers: SockJSHTTP.dynamic(request, contentType: "application/json; charset=UTF-8"),
                body: .init(byteBuffer: ByteBuffer(string: body))
            )
        }
        group.on("info", method: .options) { request, _ in
            SockJSHTTP.options(request, methods: "OPTIONS, GET")
        }
    }
}
