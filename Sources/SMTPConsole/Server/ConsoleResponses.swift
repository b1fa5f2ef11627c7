import HTTPTypes
import Hummingbird

/// Responses with their content types, UTF-8.
enum ConsoleResponses {
    static func html(_ page: HTML, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        make(page.rendered, type: "text/html; charset=utf-8", status: status, headers: headers)
    }

    static func json(_ text: String, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        make(text, type: "application/json", status: status, headers: headers)
    }

    static func text(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        make(text, type: "text/plain; charset=utf-8", status: status, headers: [:])
    }

    static func make(_ text: String, type: String, status: HTTPResponse.Status, headers: HTTPFields) -> Response {
        var fields = headers
        fields[.contentType] = type
        return Response(status: status, headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
