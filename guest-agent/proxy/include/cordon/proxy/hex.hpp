#pragma once
// The value of one hexadecimal digit, or -1: shared by chunk sizes (http) and
// percent-escapes in request paths (policy).
namespace cordon::policy {

constexpr int hex_digit_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

}  // namespace cordon::policy
