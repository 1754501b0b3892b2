/* ratfw: the one header a plugin or program includes. */
#pragma once

#include <ratfw/version.h>
#include <ratfw/error.h>
#include <ratfw/tensor.h>
#include <ratfw/autograd.h>
#include <ratfw/ops.h>
