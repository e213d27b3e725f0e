//! The features as numbers: one `f64` column per feature, NULL as NaN.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type, UInt16Type, UInt32Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

use crate::ModelError;

/// Features by column: `columns[f][row]`, NaN where the value is NULL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Matrix {
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
    rows: usize,
}

impl Matrix {
    /// A matrix from columns of equal length.
    pub fn new(names: Vec<String>, columns: Vec<Vec<f64>>) -> Result<Self, ModelError> {
        let rows = columns.first().map_or(0, Vec::len);
        if names.len() != columns.len() || columns.iter().any(|c| c.len() != rows) {
            return Err(ModelError::Training(format!(
                "{} names for {} columns of lengths {:?}",
                names.len(),
                columns.len(),
                columns.iter().map(Vec::len).collect::<Vec<_>>()
            )));
        }
        Ok(Matrix { names, columns, rows })
    }

    /// An empty matrix with these feature names, to append batches to.
    pub fn empty(names: &[String]) -> Self {
        Matrix { names: names.to_vec(), columns: vec![Vec::new(); names.len()], rows: 0 }
    }

    /// The columns `names` of `batch`, by name, as numbers: integers,
    /// floats and booleans (true is 1); NULL is NaN.
    pub fn from_batch(batch: &RecordBatch, names: &[String]) -> Result<Self, ModelError> {
        let mut m = Matrix::empty(names);
        m.append(batch)?;
        Ok(m)
    }

    /// Appends the rows of `batch` (its columns found by name).
    pub fn append(&mut self, batch: &RecordBatch) -> Result<(), ModelError> {
        let schema = batch.schema();
        for (name, out) in self.names.iter().zip(self.columns.iter_mut()) {
            let Some((i, _)) = schema.column_with_name(name) else {
                let have = schema.fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>().join(", ");
                return Err(ModelError::MissingFeature { name: name.clone(), have });
            };
            append_column(name, batch.column(i).as_ref(), out)?;
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn column(&self, f: usize) -> &[f64] {
        &self.columns[f]
    }

    #[inline]
    pub fn get(&self, f: usize, row: usize) -> f64 {
        self.columns[f][row]
    }

    /// The rows `rows`, in that order.
    pub fn take(&self, rows: &[usize]) -> Matrix {
        Matrix {
            names: self.names.clone(),
            columns: self.columns.iter().map(|c| rows.iter().map(|&r| c[r]).collect()).collect(),
            rows: rows.len(),
        }
    }
}

fn append_column(name: &str, a: &dyn Array, out: &mut Vec<f64>) -> Result<(), ModelError> {
    macro_rules! prim {
        ($t:ty) => {{
            let p = a.as_primitive::<$t>();
            out.extend((0..p.len()).map(|i| if p.is_null(i) { f64::NAN } else { p.value(i) as f64 }));
        }};
    }
    match a.data_type() {
        DataType::Int8 => prim!(Int8Type),
        DataType::Int16 => prim!(Int16Type),
        DataType::Int32 => prim!(Int32Type),
        DataType::Int64 => prim!(Int64Type),
        DataType::UInt8 => prim!(UInt8Type),
        DataType::UInt16 => prim!(UInt16Type),
        DataType::UInt32 => prim!(UInt32Type),
        DataType::Float32 => prim!(Float32Type),
        DataType::Float64 => prim!(Float64Type),
        DataType::Boolean => {
            let b = a.as_boolean();
            out.extend((0..b.len()).map(|i| if b.is_null(i) { f64::NAN } else { b.value(i) as u8 as f64 }));
        }
        DataType::Null => out.extend(std::iter::repeat_n(f64::NAN, a.len())),
        other => return Err(ModelError::FeatureType { name: name.into(), data_type: other.to_string() }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{BooleanArray, Float32Array, Int16Array, StringArray};

    use super::*;

    #[test]
    fn columns_by_name_with_nulls_as_nan() {
        let batch = RecordBatch::try_from_iter([
            ("pid", Arc::new(StringArray::from(vec!["a", "b"])) as _),
            ("n", Arc::new(Int16Array::from(vec![Some(3), None])) as _),
            ("f", Arc::new(Float32Array::from(vec![Some(0.5), Some(-1.25)])) as _),
            ("b", Arc::new(BooleanArray::from(vec![Some(true), None])) as _),
        ])
        .unwrap();
        let names: Vec<String> = ["b", "n", "f"].map(String::from).to_vec();
        let m = Matrix::from_batch(&batch, &names).unwrap();
        assert_eq!(m.rows(), 2);
        assert_eq!(m.get(0, 0), 1.0);
        assert!(m.get(0, 1).is_nan());
        assert_eq!(m.column(1)[0], 3.0);
        assert_eq!(m.column(2), &[0.5, -1.25]);
        let err = Matrix::from_batch(&batch, &["age".to_string()]).unwrap_err().to_string();
        assert_eq!(err, "the model needs feature \"age\", which the input does not have (it has: pid, n, f, b)");
        let err = Matrix::from_batch(&batch, &["pid".to_string()]).unwrap_err().to_string();
        assert_eq!(err, "feature \"pid\" is Utf8; expected a number or a boolean");
    }
}
