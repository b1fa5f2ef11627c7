/// A bounded, de-duplicated list of ``MessageAnomaly`` values in first-seen order.
///
/// Hostile messages repeat the same fault millions of times; each distinct (kind, detail) is kept
/// once and the list stops growing at its capacity.
struct AnomalyLog: Sendable {
    private(set) var anomalies: [MessageAnomaly] = []
    private var seen: Set<MessageAnomaly> = []
    let capacity: Int

    /// Details longer than this are cut, so a huge header line cannot make a huge anomaly.
    static let maxDetailCharacters = 120

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    mutating func record(_ kind: String, _ detail: String? = nil) {
        guard anomalies.count < capacity else { return }
        let anomaly = MessageAnomaly(kind: kind, detail: detail.map(Self.sanitised))
        guard seen.insert(anomaly).inserted else { return }
        anomalies.append(anomaly)
    }

    private static func sanitised(_ detail: String) -> String {
        var out = ""
        for scalar in detail.unicodeScalars.prefix(maxDetailCharacters) {
            out.unicodeScalars.append(scalar.value < 0x20 || scalar.value == 0x7F ? " " : scalar)
        }
        return out
    }
}
