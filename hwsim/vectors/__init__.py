"""Golden vectors: writer, reader and checker (specs/vectors.md)."""

from hwsim.vectors.build import layer_vectors, requant_record
from hwsim.vectors.check import check_vectors, recompute_layer, requant_params_from_layer
from hwsim.vectors.hexfmt import decode_hex, encode_hex, hex_digits
from hwsim.vectors.reader import layer_names, load_layer_vectors, read_manifest
from hwsim.vectors.writer import LayerVectors, VectorArray, sha256_file, write_vectors

__all__ = [
    "LayerVectors",
    "VectorArray",
    "check_vectors",
    "decode_hex",
    "encode_hex",
    "hex_digits",
    "layer_names",
    "layer_vectors",
    "load_layer_vectors",
    "read_manifest",
    "recompute_layer",
    "requant_params_from_layer",
    "requant_record",
    "sha256_file",
    "write_vectors",
]
