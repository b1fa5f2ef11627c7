/// A checked condition, ready to evaluate: every field bound to its stage, every list a hashed set,
/// every regex compiled.
indirect enum RuleCondition: Sendable {
    case all([RuleCondition])
    case any([RuleCondition])
    case not(RuleCondition)
    case test(RuleTest)
}

/// How a test combines the values of its field.
enum RuleQuantifier: Sendable, Hashable {
    /// A single-valued field: no value makes `==`, `in`, ... false and `!=`, `not in`, ... true.
    case single
    /// True when some value passes (the default for many-valued fields).
    case any
    /// True when every value passes; true when there are none.
    case all
}

/// `[any|all] field [not] op operand`, compiled.
struct RuleTest: Sendable {
    var field: FieldAccessor
    var quantifier: RuleQuantifier
    var negated: Bool
    var predicate: RulePredicate
}

/// What a test asks of one value.
enum RulePredicate: Sendable {
    /// `== none`: the field has no value (quantifiers do not apply).
    case isNone
    /// A boolean field used as a condition.
    case isTrue
    case equalText(String, foldCase: Bool)
    case equalInteger(Int)
    case equalBoolean(Bool)
    case equalAddress(IPAddress)
    case compareInteger(OperatorSyntax, Int)
    /// Compare with another (single-valued) field.
    case compareField(OperatorSyntax, FieldAccessor, foldCase: Bool)
    case inTexts(Set<String>, foldCase: Bool)
    case inIntegers(Set<Int>)
    case inPrefixes(IPPrefixSet)
    case matches(RuleRegex)
    case contains([String], foldCase: Bool)
    case startsWith([String], foldCase: Bool)
    case endsWith([String], foldCase: Bool)
}

extension RuleCondition {
    /// Evaluates left to right with short-circuit; `captures` receives the captures of each successful
    /// `matches`, so after evaluation it holds those of the last one.
    func evaluate(_ facts: RuleFacts, captures: inout [String?]) -> Bool {
        switch self {
        case .all(let conditions):
            for condition in conditions where !condition.evaluate(facts, captures: &captures) { return false }
            return true
        case .any(let conditions):
            for condition in conditions where condition.evaluate(facts, captures: &captures) { return true }
            return false
        case .not(let condition):
            return !condition.evaluate(facts, captures: &captures)
        case .test(let test):
            return test.evaluate(facts, captures: &captures)
        }
    }

    /// Whether a field that `matches` is tested, or is the operand another field is compared with.
    func reads(where matches: (FieldAccessor) -> Bool) -> Bool {
        switch self {
        case .all(let conditions), .any(let conditions): conditions.contains { $0.reads(where: matches) }
        case .not(let condition): condition.reads(where: matches)
        case .test(let test):
            if matches(test.field) { true } else if case .compareField(_, let other, _) = test.predicate { matches(other) } else { false }
        }
    }
}

extension RuleTest {
    func evaluate(_ facts: RuleFacts, captures: inout [String?]) -> Bool {
        let values = field.values(facts)
        if case .isNone = predicate { return values.isEmpty != negated }
        switch quantifier {
        case .single:
            guard let value = values.first else { return negated }
            return predicate.holds(for: value, facts, captures: &captures) != negated
        case .any:
            for value in values where predicate.holds(for: value, facts, captures: &captures) != negated { return true }
            return false
        case .all:
            for value in values where predicate.holds(for: value, facts, captures: &captures) == negated { return false }
            return true
        }
    }
}

extension RulePredicate {
    static func integer(_ value: RuleValue) -> Int? {
        switch value {
        case .integer(let number): number
        case .text(let text): RuleLiteral.integer(text.trimmingASCIISpaces())
        case .boolean: nil
        }
    }

    static func compare(_ op: OperatorSyntax, _ lhs: Int, _ rhs: Int) -> Bool {
        switch op {
        case .equal: lhs == rhs
        case .notEqual: lhs != rhs
        case .less: lhs < rhs
        case .lessOrEqual: lhs <= rhs
        case .greater: lhs > rhs
        case .greaterOrEqual: lhs >= rhs
        default: false
        }
    }

    func holds(for value: RuleValue, _ facts: RuleFacts, captures: inout [String?]) -> Bool {
        switch self {
        case .isNone:
            return false
        case .isTrue:
            return value == .boolean(true)
        case .equalText(let text, let foldCase):
            return foldCase ? value.text.lowercased() == text : value.text == text
        case .equalInteger(let number):
            return Self.integer(value) == number
        case .equalBoolean(let flag):
            return value == .boolean(flag)
        case .equalAddress(let address):
            return IPAddress(value.text) == address
        case .compareInteger(let op, let number):
            guard let lhs = Self.integer(value) else { return false }
            return Self.compare(op, lhs, number)
        case .compareField(let op, let other, let foldCase):
            guard let rhs = other.values(facts).first else { return false }
            if case .integer(let a) = value, case .integer(let b) = rhs { return Self.compare(op, a, b) }
            if case .boolean(let a) = value, case .boolean(let b) = rhs { return op == .equal && a == b }
            if let a = IPAddress(value.text), let b = IPAddress(rhs.text), op == .equal { return a == b }
            guard op == .equal else { return false }
            return foldCase ? value.text.lowercased() == rhs.text.lowercased() : value.text == rhs.text
        case .inTexts(let set, let foldCase):
            return set.contains(foldCase ? value.text.lowercased() : value.text)
        case .inIntegers(let set):
            return Self.integer(value).map(set.contains) ?? false
        case .inPrefixes(let prefixes):
            return IPAddress(value.text).map(prefixes.contains) ?? false
        case .matches(let regex):
            switch regex.firstMatch(in: value.text) {
            case .matched(let groups):
                captures = groups
                return true
            case .noMatch, .limitExceeded:
                return false
            }
        case .contains(let needles, let foldCase):
            let text = foldCase ? value.text.lowercased() : value.text
            return needles.contains { $0.isEmpty || text.utf8Contains($0) }
        case .startsWith(let needles, let foldCase):
            let text = foldCase ? value.text.lowercased() : value.text
            return needles.contains { text.utf8.starts(with: $0.utf8) }
        case .endsWith(let needles, let foldCase):
            let text = foldCase ? value.text.lowercased() : value.text
            return needles.contains { text.utf8.reversed().starts(with: $0.utf8.reversed()) }
        }
    }
}

extension String {
    /// Substring search on UTF-8 octets (both sides are valid UTF-8, so an octet match is a text match).
    func utf8Contains(_ needle: String) -> Bool {
        var haystack = self
        var needle = needle
        return haystack.withUTF8 { h in
            needle.withUTF8 { n in
                guard n.count <= h.count, let first = n.first else { return n.isEmpty }
                var i = 0
                let last = h.count - n.count
                while i <= last {
                    if h[i] == first {
                        var j = 1
                        while j < n.count, h[i + j] == n[j] { j += 1 }
                        if j == n.count { return true }
                    }
                    i += 1
                }
                return false
            }
        }
    }

    func trimmingASCIISpaces() -> String {
        let utf8 = self.utf8
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0D }
        guard let first = utf8.firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = utf8.lastIndex(where: { !isSpace($0) }) ?? first
        return String(decoding: utf8[first...last], as: UTF8.self)
    }
}
