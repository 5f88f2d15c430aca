import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Headers and small responses every SockJS route shares.
enum SockJSHTTP {
    static let noCache = "no-store, no-cache, must-revalidate, max-age=0"
    static let oneYear = 31_536_000
    static let javascript = "application/javascript; charset=UTF-8"
    static let plainText = "text/plain; charset=UTF-8"
    static let html = "text/html; charset=UTF-8"

    /// CORS as sockjs-node answers it: the request's origin echoed with credentials allowed
    /// (`*` when there is none or it is `null`), and requested headers allowed.
    static func cors(_ request: Request) -> HTTPFields {
        var fields = HTTPFields()
        if let origin = request.headers[.origin], origin != "null" {
            fields[.accessControlAllowOrigin] = origin
            fields[.accessControlAllowCredentials] = "true"
        } else {
            fields[.accessControlAllowOrigin] = "*"
        }
        if let requested = request.headers[.accessControlRequestHeaders], !requested.isEmpty {
            fields[.accessControlAllowHeaders] = requested
        }
        return fields
    }

    /// Headers of a private, never-cached answer with CORS.
    static func dynamic(_ request: Request, contentType: String) -> HTTPFields {
        var fields = cors(request)
        fields[.contentType] = contentType
        fields[.cacheControl] = noCache
        return fields
    }

    /// `OPTIONS`: 204, cacheable for a year, allowing `methods`.
    static func options(_ request: Request, methods: String) -> Response {
        var fields = cors(request)
        fields[.cacheControl] = "public, max-age=\(oneYear)"
        fields[.expires] = httpDate(Date().addingTimeInterval(TimeInterval(oneYear)))
        fields[.accessControlMaxAge] = String(oneYear)
        fields[.accessControlAllowMethods] = methods
        return Response(status: .noContent, headers: fields)
    }

    /// A short text answer (errors SockJS clients show or tests read).
    static func text(_ status: HTTPResponse.Status, _ body: String, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = plainText
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    /// 405 with `Allow`, no body and no content type.
    static func methodNotAllowed(allow: String) -> Response {
        Response(status: .methodNotAllowed, headers: [.allow: allow])
    }

    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }

    /// A server or session id as SockJS allows it: not empty, no dot.
    static func isValidId(_ id: String?) -> Bool {
        guard let id, !id.isEmpty else { return false }
        return !id.contains(".")
    }
}
