/// The first `capacity` items of a list, and an exact count of all of them.
struct BoundedList<Element: Sendable>: Sendable {
    private(set) var items: [Element] = []
    private(set) var total = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    mutating func append(_ item: Element) {
        total += 1
        if items.count < capacity { items.append(item) }
    }

    var omitted: Int { total - items.count }
}

/// Counts by name with at most `capacity` distinct names; names beyond those count as "(other)", so
/// hostile input with endless distinct names cannot grow memory.
struct BoundedCounter: Sendable {
    static let overflowName = "(other)"
    private(set) var counts: [String: Int] = [:]
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    mutating func add(_ rawName: String, _ amount: Int = 1) {
        let name = String(rawName.prefix(64))
        if counts[name] != nil || counts.count < capacity {
            counts[name, default: 0] += amount
        } else {
            counts[Self.overflowName, default: 0] += amount
        }
    }

    /// Largest count first, then by name, so output is stable.
    var sorted: [(name: String, count: Int)] {
        counts.map { ($0.key, $0.value) }.sorted { $0.1 != $1.1 ? $0.1 > $1.1 : $0.0 < $1.0 }
    }

    var total: Int { counts.values.reduce(0, +) }
}
