/* luapool: a freed small block is handed out again for its size class,
 * contents survive every change of size (within a class, across classes, to
 * and from the sizes not kept), and no more than LUAPOOL_KEEP blocks of a
 * size are kept. Run under ASan (make asan), a block freed twice or written
 * past its class would show. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "luapool.h"

static void *pool_new(struct luapool *p, size_t n)
{
	return luapool_realloc(p, NULL, 0, n);
}

static void test_reuse_within_a_class(void **state)
{
	(void)state;
	struct luapool p = {0};
	void *a = pool_new(&p, 40);
	assert_non_null(a);
	memset(a, 'a', 40);
	assert_null(luapool_realloc(&p, a, 40, 0));
	assert_int_equal(p.kept[(40 - 1) / LUAPOOL_GRAIN], 1);
	/* 33 to 48 bytes share the class: the block comes back, for any of them */
	void *b = pool_new(&p, 33);
	assert_ptr_equal(a, b);
	assert_int_equal(p.kept[(40 - 1) / LUAPOOL_GRAIN], 0);
	/* another class does not get it */
	assert_null(luapool_realloc(&p, b, 33, 0));
	void *c = pool_new(&p, 60);
	assert_ptr_not_equal(c, b);
	luapool_realloc(&p, c, 60, 0);
	luapool_clear(&p);
	for (unsigned i = 0; i < LUAPOOL_CLASSES; i++) {
		assert_null(p.free[i]);
		assert_int_equal(p.kept[i], 0);
	}
}

static void test_contents_survive_resizing(void **state)
{
	(void)state;
	struct luapool p = {0};
	/* 10 -> 16 (same class) -> 100 -> 1000 (not kept) -> 20000 -> 50 */
	size_t sizes[] = {10, 16, 100, 1000, 20000, 50};
	unsigned char *b = pool_new(&p, sizes[0]);
	assert_non_null(b);
	for (size_t i = 0; i < sizes[0]; i++)
		b[i] = (unsigned char)i;
	size_t have = sizes[0];
	for (size_t k = 1; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		b = luapool_realloc(&p, b, have, sizes[k]);
		assert_non_null(b);
		size_t keep = have < sizes[k] ? have : sizes[k];
		for (size_t i = 0; i < keep; i++)
			assert_int_equal(b[i], (unsigned char)i);
		for (size_t i = keep; i < sizes[k]; i++)
			b[i] = (unsigned char)i;
		have = sizes[k];
	}
	luapool_realloc(&p, b, have, 0);
	luapool_clear(&p);
}

static void test_keeps_at_most_keep(void **state)
{
	(void)state;
	struct luapool p = {0};
	enum { N = LUAPOOL_KEEP + 10 };
	static void *blocks[N];
	for (int i = 0; i < N; i++)
		assert_non_null(blocks[i] = pool_new(&p, 24));
	for (int i = 0; i < N; i++)
		luapool_realloc(&p, blocks[i], 24, 0);
	assert_int_equal(p.kept[(24 - 1) / LUAPOOL_GRAIN], LUAPOOL_KEEP);
	/* sizes above the classes are never kept */
	luapool_realloc(&p, pool_new(&p, LUAPOOL_GRAIN * LUAPOOL_CLASSES + 1),
	                LUAPOOL_GRAIN * LUAPOOL_CLASSES + 1, 0);
	for (unsigned i = 0; i < LUAPOOL_CLASSES; i++)
		if (i != (24 - 1) / LUAPOOL_GRAIN)
			assert_int_equal(p.kept[i], 0);
	luapool_clear(&p);
	assert_int_equal(p.kept[(24 - 1) / LUAPOOL_GRAIN], 0);
}

/* cmocka's list of this suite's tests: every suite's main has this shape */
int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reuse_within_a_class),
	    cmocka_unit_test(test_contents_survive_resizing),
	    cmocka_unit_test(test_keeps_at_most_keep),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
