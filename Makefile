# Makefile for pg_hamonitor (PGXS)

MODULE_big = pg_hamonitor
OBJS = $(patsubst %.c,%.o,$(sort $(wildcard src/*.c)))
EXTENSION = pg_hamonitor
DATA = $(wildcard sql/pg_hamonitor--*.sql)
PGFILEDESC = "pg_hamonitor - agentless HA witness for PostgreSQL"

PG_CPPFLAGS = -I$(libpq_srcdir) -Isrc
SHLIB_LINK_INTERNAL = $(libpq)

# pg_regress reads sql/<test>.sql and expected/<test>.out; the install and
# upgrade scripts live in sql/ too, so the test list is explicit
REGRESS = upgrade create_extension nodes guc decide classify manual slots connection_uri durability drop_extension
REGRESS_OPTS = --temp-config=test/regress.conf --temp-instance=tmp_check_regress \
	--encoding=UTF8

TAP_TESTS = 1
PROVE_TESTS = test/t/*.pl

EXTRA_CLEAN = tmp_check_regress tmp_check results regression.diffs regression.out log

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS tracks no header dependencies: every object depends on every header
$(OBJS): $(wildcard src/*.h)

# the TAP tests' helper modules; Makefile.global resets PROVE_FLAGS after
# this file is read, hence the override
override PROVE_FLAGS += -I $(srcdir)/test/perl
