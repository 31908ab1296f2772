#include "cordon/proxy/gojson.hpp"

#include <algorithm>
#include <cstdint>

#include "cordon/proxy/go_utf8.hpp"

namespace cordon::gojson {
namespace {

constexpr char32_t kReplacement = go_utf8::kRuneError;

using go_utf8::append_utf8;
using go_utf8::decode_rune;

class Parser {
  public:
    Parser(std::string_view s, const Limits& l) : s_(s), limits_(l) {}

    Value run() {
        skip_ws();
        Value v = value(0);
        skip_ws();
        if (pos_ != s_.size())
            fail("unexpected data after the JSON value");
        return v;
    }

  private:
    [[noreturn]] void fail(const std::string& what) const { throw ParseError(what, pos_); }

    void skip_ws() {
        while (pos_ < s_.size() &&
               (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
            ++pos_;
    }

    Value value(std::size_t depth) {
        if (pos_ >= s_.size())
            fail("unexpected end of JSON input");
        Value v;
        v.begin = pos_;
        char c = s_[pos_];
        switch (c) {
            case '{':
                object(v, depth + 1);
                break;
            case '[':
                array(v, depth + 1);
                break;
            case '"':
                v.type = Type::string;
                v.text = string();
                break;
            case 't':
                literal("true"), v.type = Type::boolean, v.boolean = true;
                break;
            case 'f':
                literal("false"), v.type = Type::boolean;
                break;
            case 'n':
                literal("null");
                break;
            default:
                if (c == '-' || (c >= '0' && c <= '9')) {
                    v.type = Type::number;
                    v.text = number();
                } else {
                    fail(std::string("invalid character '") + printable(c) +
                         "' looking for a value");
                }
        }
        v.end = pos_;
        return v;
    }

    static std::string printable(char c) {
        auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7F)
            return std::string(1, c);
        char buf[8];
        static const char* hex = "0123456789abcdef";
        buf[0] = '\\', buf[1] = 'x', buf[2] = hex[u >> 4], buf[3] = hex[u & 15], buf[4] = 0;
        return buf;
    }

    void literal(std::string_view word) {
        if (s_.substr(pos_, word.size()) != word)
            fail("invalid literal");
        pos_ += word.size();
    }

    std::string number() {
        std::size_t start = pos_;
        auto digit = [&] { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; };
        if (s_[pos_] == '-')
            ++pos_;
        if (!digit())
            fail("invalid number: digit expected");
        if (s_[pos_] == '0') {
            ++pos_;
        } else {
            while (digit()) ++pos_;
        }
        if (pos_ < s_.size() && s_[pos_] == '.') {
            ++pos_;
            if (!digit())
                fail("invalid number: digit expected after '.'");
            while (digit()) ++pos_;
        }
        if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            ++pos_;
            if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-'))
                ++pos_;
            if (!digit())
                fail("invalid number: digit expected in exponent");
            while (digit()) ++pos_;
        }
        return std::string(s_.substr(start, pos_ - start));
    }

    int hex4(std::size_t at) const {
        if (at + 4 > s_.size())
            return -1;
        int r = 0;
        for (std::size_t i = at; i < at + 4; ++i) {
            char c = s_[i];
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                return -1;
            r = r * 16 + d;
        }
        return r;
    }

    std::string string() {
        ++pos_;  // opening quote
        std::string out;
        while (true) {
            if (pos_ >= s_.size())
                fail("unexpected end of JSON input in string");
            auto c = static_cast<unsigned char>(s_[pos_]);
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (c < 0x20)
                fail("invalid character in string literal");
            if (c == '\\') {
                if (pos_ + 1 >= s_.size())
                    fail("unexpected end of JSON input in escape");
                char e = s_[pos_ + 1];
                switch (e) {
                    case '"':
                        out.push_back('"');
                        break;
                    case '\\':
                        out.push_back('\\');
                        break;
                    case '/':
                        out.push_back('/');
                        break;
                    case 'b':
                        out.push_back('\b');
                        break;
                    case 'f':
                        out.push_back('\f');
                        break;
                    case 'n':
                        out.push_back('\n');
                        break;
                    case 'r':
                        out.push_back('\r');
                        break;
                    case 't':
                        out.push_back('\t');
                        break;
                    case 'u': {
                        int r = hex4(pos_ + 2);
                        if (r < 0)
                            fail("invalid \\u escape in string");
                        pos_ += 6;
                        char32_t rune = static_cast<char32_t>(r);
                        if (rune >= 0xD800 && rune <= 0xDFFF) {
                            // Go: a valid pair combines; anything else is U+FFFD and
                            // the following escape is read on its own.
                            int r2 = -1;
                            if (pos_ + 1 < s_.size() && s_[pos_] == '\\' && s_[pos_ + 1] == 'u')
                                r2 = hex4(pos_ + 2);
                            if (rune < 0xDC00 && r2 >= 0xDC00 && r2 <= 0xDFFF) {
                                rune = 0x10000 + ((rune - 0xD800) << 10) +
                                       (static_cast<char32_t>(r2) - 0xDC00);
                                pos_ += 6;
                            } else {
                                rune = kReplacement;
                            }
                        }
                        append_utf8(out, rune);
                        continue;
                    }
                    default:
                        fail("invalid escape in string");
                }
                pos_ += 2;
                continue;
            }
            if (c < 0x80) {
                out.push_back(static_cast<char>(c));
                ++pos_;
                continue;
            }
            std::size_t width = 1;
            char32_t r = decode_rune(s_, pos_, width);
            if (r == kReplacement && width == 1) {
                append_utf8(out, kReplacement);
            } else {
                out.append(s_.substr(pos_, width));
            }
            pos_ += width;
        }
    }

    void array(Value& v, std::size_t depth) {
        if (depth > limits_.depth_limit)
            fail("JSON nested too deeply");
        v.type = Type::array;
        ++pos_;
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == ']') {
            ++pos_;
            return;
        }
        while (true) {
            skip_ws();
            v.items.push_back(value(depth));
            skip_ws();
            if (pos_ >= s_.size())
                fail("unexpected end of JSON input in array");
            if (s_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (s_[pos_] == ']') {
                ++pos_;
                return;
            }
            fail("invalid character after array element");
        }
    }

    void object(Value& v, std::size_t depth) {
        if (depth > limits_.depth_limit)
            fail("JSON nested too deeply");
        v.type = Type::object;
        ++pos_;
        skip_ws();
        if (pos_ < s_.size() && s_[pos_] == '}') {
            ++pos_;
            return;
        }
        while (true) {
            skip_ws();
            if (pos_ >= s_.size() || s_[pos_] != '"')
                fail("object key string expected");
            std::size_t key_at = pos_;
            std::string key = string();
            skip_ws();
            if (pos_ >= s_.size() || s_[pos_] != ':')
                fail("':' expected after object key");
            ++pos_;
            skip_ws();
            Value member = value(depth);
            if (limits_.refuse_exact_duplicates) {
                for (const auto& m : v.members)
                    if (m.first == key)
                        throw ParseError("duplicate object key \"" + key + "\"", key_at);
            }
            member.key_begin = key_at;
            v.members.push_back(Member{std::move(key), std::move(member)});
            skip_ws();
            if (pos_ >= s_.size())
                fail("unexpected end of JSON input in object");
            if (s_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (s_[pos_] == '}') {
                ++pos_;
                return;
            }
            fail("invalid character after object member");
        }
    }

    std::string_view s_;
    const Limits& limits_;
    std::size_t pos_ = 0;
};

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

}  // namespace

Value parse(std::string_view text, const Limits& limits) {
    return Parser(text, limits).run();
}

bool key_matches_field(std::string_view key, std::string_view field) {
    if (key == field)
        return true;
    // Walk the key rune by rune against the ASCII field name. Under Unicode simple
    // folding the only non-ASCII runes that fold onto ASCII letters are U+017F (long s,
    // folds with 's') and U+212A (Kelvin sign, folds with 'k').
    std::size_t i = 0, j = 0;
    while (i < key.size() && j < field.size()) {
        auto b = static_cast<unsigned char>(key[i]);
        char f = ascii_lower(field[j]);
        if (b < 0x80) {
            if (ascii_lower(static_cast<char>(b)) != f)
                return false;
            ++i;
        } else {
            std::size_t w = 1;
            char32_t r = decode_rune(key, i, w);
            if (r == 0x017F && f == 's') {
            } else if (r == 0x212A && f == 'k') {
            } else {
                return false;
            }
            i += w;
        }
        ++j;
    }
    return i == key.size() && j == field.size();
}

std::vector<const Value*> lookup(const Value& object, std::string_view field) {
    std::vector<const Value*> out;
    if (!object.is_object())
        return out;
    for (const auto& m : object.members)
        if (key_matches_field(m.first, field))
            out.push_back(&m.second);
    return out;
}

bool is_zero(const Value& v) {
    switch (v.type) {
        case Type::null:
            return true;
        case Type::boolean:
            return !v.boolean;
        case Type::number:
            return std::none_of(v.text.begin(), v.text.end(),
                                [](char c) { return c >= '1' && c <= '9'; }) ||
                   // "0e5" style exponents only scale zero; a digit 1-9 only in an exponent
                   // still leaves a zero mantissa.
                   [&] {
                       auto e = v.text.find_first_of("eE");
                       std::string_view m(v.text.data(),
                                          e == std::string::npos ? v.text.size() : e);
                       return std::none_of(m.begin(), m.end(),
                                           [](char c) { return c >= '1' && c <= '9'; });
                   }();
        case Type::string:
            return v.text.empty();
        case Type::array:
            return std::all_of(v.items.begin(), v.items.end(),
                               [](const Value& x) { return is_zero(x); });
        case Type::object:
            return std::all_of(v.members.begin(), v.members.end(),
                               [](const auto& m) { return is_zero(m.second); });
    }
    return false;
}

std::string quote(std::string_view s) {
    std::string out = "\"";
    static const char* hex = "0123456789abcdef";
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(ch);
        } else if (c < 0x20) {
            out += "\\u00";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        } else {
            out.push_back(ch);
        }
    }
    out.push_back('"');
    return out;
}

}  // namespace cordon::gojson
