"""Prediction requests decoded straight into a model's features, for requests that are valid as sent.

msgspec decodes `{"instances": [...]}` against a type built from the model's input schema, checking
every field's presence and JSON type in C, and the values land in numpy arrays without a DataFrame
on the way. Whatever it cannot vouch for (a missing or mistyped field, a category the encoder did not
see, a number beyond float64, a null the model cannot take, records sent as arrays, a body that is
not the expected object) makes `decode` return None, and the caller takes the full path
(scoring/validation.py), which finds and words every problem and warning. So the fast path never answers
differently, it only answers sooner.
"""

import itertools
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import pandas as pd

from modelyard.registry.schema import NUMBER, InputSchema
from modelyard.scoring.predict import LoadedModel


@dataclass
class Decoded:
    """Valid records as columns: numbers in one float64 matrix, text columns as object arrays.
    `len()` is the number of records, `decoded[name]` a column, as for a DataFrame."""

    names: list[str]
    numbers: np.ndarray
    number_columns: dict[str, int]
    """Where each numeric feature is in `numbers`."""
    texts: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.numbers)

    def __getitem__(self, name: str) -> np.ndarray:
        if name in self.texts:
            return self.texts[name]
        return self.numbers[:, self.number_columns[name]]

    def to_frame(self) -> pd.DataFrame:
        if not self.texts:
            # column-major, as pandas lays out a frame built column by column (scoring/validation.py does):
            # the same memory order gives the same floating-point sums in BLAS, to the last bit
            return pd.DataFrame(np.asfortranarray(self.numbers), columns=self.names, copy=False)
        return pd.DataFrame({name: self[name] for name in self.names}, columns=self.names)


class RequestDecoder:
    def __init__(self, schema: InputSchema) -> None:
        self.names = schema.names
        fields: list[tuple[str, Any]] = []
        for index, feature in enumerate(schema.features):
            kind: Any = float if feature.dtype == NUMBER else str
            fields.append((f"f{index}", kind | None if feature.nullable else kind))
        # Feature names may be any text, so the struct's fields are f0, f1, ... renamed to them in JSON.
        renamed = {f"f{index}": name for index, name in enumerate(self.names)}
        record = msgspec.defstruct("Record", fields, gc=False, rename=renamed)
        body = msgspec.defstruct("Body", [("instances", list[record])], gc=False)  # type: ignore[valid-type]
        self._decoder = msgspec.json.Decoder(body)
        self._texts = [i for i, f in enumerate(schema.features) if f.dtype != NUMBER]
        self._numbers = [i for i, f in enumerate(schema.features) if f.dtype == NUMBER]
        self._number_columns = {self.names[i]: column for column, i in enumerate(self._numbers)}
        self._known = {
            feature.name: set(feature.categories)
            for feature in schema.features
            if feature.categories is not None
        }

    def decode(self, raw: bytes) -> Decoded | None:
        try:
            instances = self._decoder.decode(raw).instances  # type: ignore[attr-defined]
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
            return None  # RecursionError: an unknown field nested deeper than msgspec recurses
        if not instances:
            return None
        if self._texts:
            rows = list(map(msgspec.structs.astuple, instances))
            table = np.array(rows, dtype=object)
            numbers = (
                table[:, self._numbers].astype(np.float64) if self._numbers else np.empty((len(rows), 0))
            )
            texts = {self.names[i]: table[:, i] for i in self._texts}
        else:
            numbers, texts = self._numbers_only(instances), {}
        decoded = Decoded(self.names, numbers, self._number_columns, texts)
        for name, known in self._known.items():
            if not known.issuperset(decoded[name].tolist()):
                return None  # unknown (or missing) categories: the full path warns or refuses
        return decoded

    def _numbers_only(self, instances: list[Any]) -> np.ndarray:
        width = len(self.names)
        values = itertools.chain.from_iterable(map(msgspec.structs.astuple, instances))
        try:
            return np.fromiter(values, np.float64, count=len(instances) * width).reshape(-1, width)
        except TypeError:  # a null: np.array makes it NaN, np.fromiter does not
            rows = list(map(msgspec.structs.astuple, instances))
            return np.array(rows, dtype=np.float64).reshape(len(rows), width)


class RequestDecoders:
    """The decoder of each model's served version, built on its first request and replaced when a
    promotion changes the version: one per model, whatever the history of promotions."""

    def __init__(self) -> None:
        self._built: dict[str, tuple[int, RequestDecoder]] = {}

    def of(self, model: LoadedModel) -> RequestDecoder:
        built = self._built.get(model.name)
        if built is None or built[0] != model.version:
            built = self._built[model.name] = (model.version, RequestDecoder(model.schema))
        return built[1]
