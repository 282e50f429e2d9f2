import pytest
from faust.serializers import codecs

from streams.adapters.faust_codecs import codec_name, register
from streams.wire.avro import DecodeError, avro_codec

STAGE = {"lead_id": "L-1", "stage": "hot", "since": 1_795_000_000_000, "sequence": 2,
         "definitions_version": 1}


def test_faust_topics_can_use_the_single_object_codec():
    register()
    data = codecs.dumps(codec_name("LeadStage"), STAGE)
    assert data == avro_codec().encode("LeadStage", STAGE)  # the exact wire bytes
    assert codecs.loads(codec_name("LeadStage"), data) == STAGE


def test_the_faust_codec_refuses_another_record_type():
    register()
    data = avro_codec().encode("LeadStage", STAGE)
    with pytest.raises(DecodeError, match="expected a LeadStageChanged"):
        codecs.loads(codec_name("LeadStageChanged"), data)
