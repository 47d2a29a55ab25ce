/* MurmurHash3 x86 32-bit against published vectors, and Unleash's
 * normalized value (hash of "groupId:userId" modulo 100, plus 1) against the
 * values the Unleash SDKs assert in their own tests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "murmur3.h"

static uint32_t hash(const char *s, uint32_t seed)
{
	return murmur3_32(s, strlen(s), seed);
}

static uint32_t normalized(const char *user, const char *group)
{
	char buf[256];
	size_t n = (size_t)snprintf(buf, sizeof(buf), "%s:%s", group, user);
	return murmur3_32(buf, n, 0) % 100 + 1;
}

static void test_reference_vectors(void **state)
{
	(void)state;
	assert_int_equal(hash("", 0), 0);
	assert_int_equal(hash("", 1), 0x514e28b7u);
	assert_int_equal(hash("hello", 0), 0x248bfa47u);
	assert_int_equal(hash("world", 1), 1648897759u);
	assert_int_equal(hash("Some Larger String!", 123), 3193508780u);
	assert_int_equal(hash("The quick brown fox jumps over the lazy dog", 0), 0x2e4ff723u);
}

/* Published vectors for raw bytes: every tail length (0 to 3 bytes after the
 * last block), zero bytes, seeds with the high bit set. */
static void test_byte_vectors(void **state)
{
	(void)state;
	static const struct {
		const char *bytes;
		size_t len;
		uint32_t seed;
		uint32_t want;
	} cases[] = {
	    {"", 0, 0xffffffffu, 0x81f16f39u},
	    {"\xff\xff\xff\xff", 4, 0, 0x76293b50u},
	    {"\x21\x43\x65\x87", 4, 0, 0xf55b516bu},
	    {"\x21\x43\x65\x87", 4, 0x5082edeeu, 0x2362f9deu},
	    {"\x21\x43\x65", 3, 0, 0x7e4a8634u},
	    {"\x21\x43", 2, 0, 0xa0f7b07au},
	    {"\x21", 1, 0, 0x72661cf4u},
	    {"\x00\x00\x00\x00", 4, 0, 0x2362f9deu},
	    {"\x00\x00\x00", 3, 0, 0x85f0b427u},
	    {"\x00\x00", 2, 0, 0x30f4c306u},
	    {"\x00", 1, 0, 0x514e28b7u},
	    {"Hello, world!", 13, 1234, 0xfaf6cdb3u},
	    {"Hello, world!", 13, 4321, 0xbf505788u},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(murmur3_32(cases[i].bytes, cases[i].len, cases[i].seed),
		                 cases[i].want);
}

static void test_unleash_normalized_value(void **state)
{
	(void)state;
	assert_int_equal(normalized("123", "gr1"), 73);
	assert_int_equal(normalized("999", "groupX"), 25);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reference_vectors),
	    cmocka_unit_test(test_byte_vectors),
	    cmocka_unit_test(test_unleash_normalized_value),
	};
	return cmocka_run_group_tests_name("murmur3", tests, NULL, NULL);
}
