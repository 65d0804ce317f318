"""The llm service's set-up of a model for serving (services/llm/model/loading.py), on the tiny random Llama (the
embedded model's architecture): packed linear layers give F.linear's results (the same bits in bfloat16), peft wraps
them as it wraps any linear layer, and single-token attention with its query heads folded gives transformers' sdpa
results; greedy decoding makes the same tokens set up or not."""
import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM

from devtools.models import RANDOM_GPT2, RANDOM_LLAMA, build_tiny_llama, build_tiny_model
from services.common.devices import Placement
from services.llm.model import attention
from services.llm.model.loading import prepare_for_serving
from services.llm.model.packed_linear import PackedConv1D, PackedLinear, available
from transformers.pytorch_utils import Conv1D

pytestmark = pytest.mark.skipif(not available(torch.device("cpu")), reason="torch without oneDNN")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    torch.set_num_threads(1)
    return build_tiny_llama(tmp_path_factory.mktemp("serving-setup") / RANDOM_LLAMA)


def loaded(folder, dtype: torch.dtype, served: bool):
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype).eval()
    if served:
        changes = prepare_for_serving(model, Placement(torch.device("cpu"), dtype))
        assert changes == [f"attention {attention.NAME}", "15 linear layers packed"]  # 7 a layer and the head
    return model


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_packed_linear_layer_computes_what_f_linear_computes(dtype):
    torch.manual_seed(0)
    linear = torch.nn.Linear(96, 160, bias=True).to(dtype)
    packed = PackedLinear.from_linear(linear)
    assert isinstance(packed, torch.nn.Linear) and packed.weight is linear.weight
    for shape in [(1, 96), (3, 96), (2, 5, 96), (40, 96)]:
        x = torch.randn(shape).to(dtype)
        with torch.inference_mode():
            expected, got = torch.nn.functional.linear(x, linear.weight, linear.bias), packed(x)
        if dtype == torch.bfloat16:
            assert torch.equal(got, expected)
        else:
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_packed_conv1d_computes_what_gpt2s_conv1d_computes(dtype):
    torch.manual_seed(0)
    conv = Conv1D(160, 96).to(dtype)
    packed = PackedConv1D.from_conv1d(conv)
    assert isinstance(packed, Conv1D) and packed.weight is conv.weight and (packed.nf, packed.nx) == (160, 96)
    x = torch.randn(2, 5, 96).to(dtype)
    with torch.inference_mode():
        torch.testing.assert_close(packed(x), conv(x), rtol=1e-5 if dtype == torch.float32 else 1e-2, atol=1e-5)


def test_greedy_tokens_are_the_same_set_up_for_serving_or_not(folder, tmp_path):
    prompt = torch.tensor([[5, 17, 99, 4, 250, 31, 8, 77]])
    gpt2 = build_tiny_model(tmp_path / RANDOM_GPT2)
    for model_folder in (folder, gpt2):
        with torch.inference_mode():
            plain = loaded(model_folder, torch.float32, False).generate(prompt, max_new_tokens=24, do_sample=False)
            served = AutoModelForCausalLM.from_pretrained(model_folder).eval()
            prepare_for_serving(served, Placement(torch.device("cpu"), torch.float32))
            assert torch.equal(plain, served.generate(prompt, max_new_tokens=24, do_sample=False))


def test_single_token_attention_folds_the_query_heads_and_matches_sdpa(folder):
    model = loaded(folder, torch.float32, False)
    module = model.model.layers[0].self_attn
    assert module.num_key_value_groups == 2
    torch.manual_seed(1)
    query, key, value = torch.randn(3, 4, 1, 16), torch.randn(3, 2, 9, 16), torch.randn(3, 2, 9, 16)
    for mask in (None, torch.tensor([[[[True] * 9]], [[[False] * 4 + [True] * 5]], [[[True] * 9]]])):
        folded, _ = attention.attention(module, query, key, value, mask, scaling=0.25)
        expected = torch.nn.functional.scaled_dot_product_attention(
            query, key.repeat_interleave(2, 1), value.repeat_interleave(2, 1), attn_mask=mask, scale=0.25)
        torch.testing.assert_close(folded, expected.transpose(1, 2), rtol=1e-5, atol=1e-6)


def test_peft_wraps_packed_layers_and_its_adapter_changes_the_output(folder):
    model = loaded(folder, torch.float32, True)
    config = LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, config).eval()
    wrapped = peft_model.base_model.model.model.layers[0].self_attn.q_proj
    assert isinstance(wrapped.base_layer, PackedLinear)
    ids = torch.tensor([[5, 17, 99, 4]])
    with torch.inference_mode():
        with_adapter = peft_model(input_ids=ids).logits
        with peft_model.disable_adapter():
            without = peft_model(input_ids=ids).logits
        plain = loaded(folder, torch.float32, False)(input_ids=ids).logits
    torch.testing.assert_close(without, plain, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(with_adapter, without, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_with_int8_copies_the_smallest_products_read_int8_and_larger_ones_the_packed_weight(dtype):
    torch.manual_seed(0)
    linear = torch.nn.Linear(96, 160, bias=True).to(dtype)
    packed, quantized = PackedLinear.from_linear(linear), PackedLinear.from_linear(linear, int8=True)
    assert quantized.int8_weight.dtype == torch.int8 and quantized.int8_scales.shape == (160,)
    with torch.inference_mode():
        for shape in [(1, 96), (1, 2, 96)]:  # at most INT8_MAX_ROWS rows: the int8 weight, close to the exact one
            x = torch.randn(shape).to(dtype)
            exact, got = torch.nn.functional.linear(x, linear.weight, linear.bias).float(), quantized(x).float()
            assert got.shape == exact.shape and not torch.equal(got, exact)
            assert ((got - exact).norm() / exact.norm()) < 0.02
        x = torch.randn(8, 96).to(dtype)  # more rows: the packed weight, as without int8
        assert torch.equal(quantized(x), packed(x))
