//! Synthetic tree-ensemble exports, shaped like what `onnxmltools.convert_xgboost` writes for a
//! multi-class XGBoost classifier: one `TreeEnsembleClassifier` node, `rounds * classes`
//! complete trees of a given depth (tree `t` scores class `t % classes`), `BRANCH_LT` nodes,
//! `SOFTMAX` post-transform.
//!
//! Used by the compile-time benchmark over ensemble size and by the tests that hold a
//! 1,000-tree ensemble to a compile-time budget: the generator needs no Python and no
//! training, and its trees use every feature and many distinct thresholds, as boosted trees
//! on real data do.

use super::proto::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto, type_proto,
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorShapeProto,
    TypeProto, ValueInfoProto,
};
use crate::rng::Mt19937;
use prost::Message;

/// Shape of a synthetic ensemble.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SynthEnsemble {
    /// Boosting rounds (trees per class).
    pub rounds: usize,
    /// Classes (>= 2; two classes still get one tree per class and round).
    pub classes: usize,
    /// Depth of every tree (`2^depth` leaves).
    pub depth: u32,
    /// Input features.
    pub features: usize,
    /// Thresholds are drawn as `k + 0.5` for integers `k` in `0..levels - 1`, so integer
    /// features in `0..levels` (like the digits dataset's 0..=16 pixels) split everywhere.
    pub levels: u32,
    /// Seed of the generator.
    pub seed: u32,
}

impl SynthEnsemble {
    /// Total number of trees.
    pub fn trees(&self) -> usize {
        self.rounds * self.classes
    }

    /// The model as ONNX protobuf bytes.
    pub fn onnx(&self) -> Vec<u8> {
        let mut rng = Mt19937::new(self.seed);
        let (mut tree_ids, mut node_ids, mut feats, mut vals, mut modes) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut yes, mut no) = (vec![], vec![]);
        let (mut c_tree, mut c_node, mut c_id, mut c_w) = (vec![], vec![], vec![], vec![]);
        let internal = (1i64 << self.depth) - 1;
        let leaves = 1i64 << self.depth;
        for t in 0..self.trees() as i64 {
            // Heap numbering: node i has children 2i+1 (true) and 2i+2 (false).
            for i in 0..internal + leaves {
                tree_ids.push(t);
                node_ids.push(i);
                if i < internal {
                    feats.push(rng.interval(self.features as u64 - 1) as i64);
                    vals.push(rng.interval(u64::from(self.levels.max(2)) - 2) as f32 + 0.5);
                    modes.push(b"BRANCH_LT".to_vec());
                    yes.push(2 * i + 1);
                    no.push(2 * i + 2);
                } else {
                    feats.push(0);
                    vals.push(0.0);
                    modes.push(b"LEAF".to_vec());
                    yes.push(0);
                    no.push(0);
                    c_tree.push(t);
                    c_node.push(i);
                    c_id.push(t % self.classes as i64);
                    c_w.push((rng.next_f64() - 0.5) as f32);
                }
            }
        }
        let ints = |name: &str, v: Vec<i64>| AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Ints as i32),
            ints: v,
            ..Default::default()
        };
        let floats = |name: &str, v: Vec<f32>| AttributeProto {
            name: Some(name.into()),
            r#type: Some(AttributeType::Floats as i32),
            floats: v,
            ..Default::default()
        };
        let attrs = vec![
            ints("nodes_treeids", tree_ids),
            ints("nodes_nodeids", node_ids),
            ints("nodes_featureids", feats),
            floats("nodes_values", vals),
            AttributeProto {
                name: Some("nodes_modes".into()),
                r#type: Some(AttributeType::Strings as i32),
                strings: modes,
                ..Default::default()
            },
            ints("nodes_truenodeids", yes),
            ints("nodes_falsenodeids", no),
            ints("class_treeids", c_tree),
            ints("class_nodeids", c_node),
            ints("class_ids", c_id),
            floats("class_weights", c_w),
            ints("classlabels_int64s", (0..self.classes as i64).collect()),
            floats("base_values", vec![0.5; self.classes]),
            AttributeProto {
                name: Some("post_transform".into()),
                r#type: Some(AttributeType::String as i32),
                s: Some(b"SOFTMAX".to_vec()),
                ..Default::default()
            },
        ];
        let value = |name: &str, elem: DataType, dims: &[i64]| ValueInfoProto {
            name: Some(name.into()),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: Some(elem as i32),
                    shape: Some(TensorShapeProto {
                        dim: dims
                            .iter()
                            .map(|&d| tensor_shape_proto::Dimension {
                                value: Some(if d < 0 {
                                    tensor_shape_proto::dimension::Value::DimParam("N".into())
                                } else {
                                    tensor_shape_proto::dimension::Value::DimValue(d)
                                }),
                                ..Default::default()
                            })
                            .collect(),
                    }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        };
        ModelProto {
            ir_version: Some(8),
            opset_import: vec![
                OperatorSetIdProto {
                    domain: Some(String::new()),
                    version: Some(17),
                },
                OperatorSetIdProto {
                    domain: Some("ai.onnx.ml".into()),
                    version: Some(3),
                },
            ],
            graph: Some(GraphProto {
                name: Some("synthetic_xgboost".into()),
                node: vec![NodeProto {
                    op_type: Some("TreeEnsembleClassifier".into()),
                    domain: Some("ai.onnx.ml".into()),
                    name: Some("trees".into()),
                    input: vec!["input".into()],
                    output: vec!["label".into(), "probabilities".into()],
                    attribute: attrs,
                    ..Default::default()
                }],
                input: vec![value("input", DataType::Float, &[-1, self.features as i64])],
                output: vec![
                    value("label", DataType::Int64, &[-1]),
                    value("probabilities", DataType::Float, &[-1, self.classes as i64]),
                ],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// `n` rows of integer features in `0..levels` (row-major, `features` per row).
    pub fn rows(&self, n: usize, seed: u32) -> Vec<f64> {
        let mut rng = Mt19937::new(seed);
        (0..n * self.features)
            .map(|_| rng.interval(u64::from(self.levels.max(2)) - 1) as f64)
            .collect()
    }

    /// [`SynthEnsemble::rows`] as a CSV with a header (`f0,f1,...`).
    pub fn csv_rows(&self, n: usize, seed: u32) -> String {
        let mut s = (0..self.features)
            .map(|i| format!("f{i}"))
            .collect::<Vec<_>>()
            .join(",");
        s.push('\n');
        for row in self.rows(n, seed).chunks(self.features) {
            let cells: Vec<String> = row.iter().map(|v| format!("{v}")).collect();
            s.push_str(&cells.join(","));
            s.push('\n');
        }
        s
    }
}
