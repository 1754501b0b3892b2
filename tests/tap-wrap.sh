#!/bin/sh
# Runs one g_test program with TAP output (automake's TAP driver reads it).
exec "$@" --tap
