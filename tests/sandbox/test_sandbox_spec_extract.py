"""The sandbox's extract of the spec's request schemas is what the vendored spec gives today."""

from sandbox import spec_extract, validation


def test_the_committed_extract_is_a_fresh_regeneration_of_the_vendored_spec():
    committed = spec_extract.EXTRACT_PATH.read_text()
    assert committed == spec_extract.generate(), (
        "sandbox/spec_schemas.json differs from the vendored spec: run `manage.py sandbox_spec_extract`"
    )


def test_every_operation_the_sandbox_validates_has_a_schema_in_the_extract():
    for operation, name in validation.EXTRACT["operations"].items():
        assert name in validation.DEFS, operation
    assert "file_search_call.results" in validation.INCLUDE_VALUES
