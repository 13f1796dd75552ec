"""Serves a GGUF model with llama.cpp's OpenAI-compatible server (the
xllamacpp wheel) on 127.0.0.1:PORT until SIGTERM. Used by test_support::llama (the local-model tests).

usage: python serve_llama.py MODEL.gguf PORT
"""
import signal
import sys

import xllamacpp

params = xllamacpp.CommonParams()
params.model.path = sys.argv[1]
params.port = int(sys.argv[2])
params.hostnames = ["127.0.0.1"]
params.n_ctx = 2048
params.n_parallel = 1
params.use_jinja = True  # the model's own chat template
params.cpuparams.n_threads = 2
server = xllamacpp.Server(params)
print("listening", server.listening_address, flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
