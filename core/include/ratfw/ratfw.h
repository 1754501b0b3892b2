/* ratfw: the one header a plugin or program includes. */
#pragma once

#include <ratfw/version.h>
#include <ratfw/error.h>
#include <ratfw/tensor.h>
#include <ratfw/autograd.h>
#include <ratfw/ops.h>
#include <ratfw/io.h>
#include <ratfw/draw.h>
#include <ratfw/nn.h>
#include <ratfw/module.h>
#include <ratfw/config.h>
#include <ratfw/run.h>
#include <ratfw/text.h>
#include <ratfw/data.h>
#include <ratfw/clip.h>
#include <ratfw/dataset.h>
#include <ratfw/gan.h>
#include <ratfw/npz.h>
#include <ratfw/eval.h>
#include <ratfw/ablate.h>
