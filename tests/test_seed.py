"""The seed notebook's visible tests, as the notebook wrote them (OCR damage repaired), on NumPy.

Only the imports differ: the classes come from xmlp instead of the notebook's cells.
"""

import numpy as np

from xmlp import MLP, Linear, MSELoss, Tanh
from xmlp.data import generate_data


def test_linear_calls():
    num_samples, input_dim, output_dim = 5, 3, 4

    x_dummy = np.random.randn(num_samples, input_dim)
    w_dummy = np.random.randn(output_dim, input_dim)
    b_dummy = np.random.randn(output_dim)
    grad_output_dummy = np.random.randn(num_samples, output_dim)
    learning_rate = 0.5

    # Forward pass
    linear_layer = Linear(input_dim=input_dim, output_dim=output_dim, initial_weights=w_dummy, initial_biases=b_dummy)
    output = linear_layer.forward(x_dummy)
    assert output is not None, 'Forward output is not implemented or set as None.'
    assert output.shape == (num_samples, output_dim), f'Expected output shape: {(num_samples, output_dim)}, but got: {output.shape}'

    # Backward pass
    grad_input = linear_layer.backward(grad_output_dummy)
    assert grad_input is not None, 'Backward pass returned None for grad_input.'
    assert grad_input.shape == (num_samples, input_dim), f'Expected grad_input shape: {(num_samples, input_dim)}, but got: {grad_input.shape}'
    assert linear_layer.grad_weights is not None, 'grad_weights is not implemented or set as None.'
    assert linear_layer.grad_weights.shape == (output_dim, input_dim), f'Expected grad_weights shape: {(output_dim, input_dim)}, but got: {linear_layer.grad_weights.shape}'
    assert linear_layer.grad_biases is not None, 'grad_biases is not implemented or set as None.'
    assert linear_layer.grad_biases.shape == (output_dim,), f'Expected grad_biases shape: {(output_dim,)}, but got: {linear_layer.grad_biases.shape}'

    # Save the current weights and biases for comparison
    old_weights = linear_layer.weights.copy()
    old_biases = linear_layer.biases.copy()

    # Update parameters
    linear_layer.update_params(learning_rate)

    # Ensure weights and biases are updated (not the same as before)
    assert not np.allclose(linear_layer.weights, old_weights), 'Weights were not updated correctly.'
    assert not np.allclose(linear_layer.biases, old_biases), 'Biases were not updated correctly.'
    assert linear_layer.weights.shape == (output_dim, input_dim), f'Expected weights shape: {(output_dim, input_dim)}, but got: {linear_layer.weights.shape}'
    assert linear_layer.biases.shape == (output_dim,), f'Expected biases shape: {(output_dim,)}, but got: {linear_layer.biases.shape}'
    print('Visible tests for linear layer passed successfully!')


def compute_numerical_gradient(layer, x, eps=1e-4):
    """
    Compute the numerical gradient of the forward pass with respect to the input x.

    Args:
    - layer: The layer whose forward pass we are testing.
    - x (np.array): Input data of shape (num_samples, num_features).
    - eps (float): Small deviation value for numerical gradient calculation.

    Returns:
    - numerical_grad (np.array): The numerical gradient of shape (num_samples, num_features).
    """
    assert hasattr(layer, 'forward'), 'layer must have a forward method'
    assert x.ndim == 2, f'Expected 2D array x, but got {x.ndim}D'

    num_samples, num_features = x.shape
    numerical_grad = np.zeros_like(x)  # Initialize the gradient matrix

    # Loop over each sample and feature
    for i in range(num_samples):
        for j in range(num_features):
            # Create perturbed inputs
            x_pos = x.copy()
            x_neg = x.copy()
            x_pos[i, j] += eps
            x_neg[i, j] -= eps

            # Compute the forward pass
            y_pos = layer.forward(x_pos)
            y_neg = layer.forward(x_neg)

            # Approximate the gradient using finite differences
            numerical_grad[i, j] = (y_pos - y_neg).sum() / (2 * eps)

    return numerical_grad


# This checks if dy/dx works correctly.
# Make sure that your backward function also considers grad_output to return dL/dx
def test_gradients():
    num_samples, input_dim, output_dim = 5, 3, 4
    eps = 1e-4
    x_dummy = np.random.randn(num_samples, input_dim)
    w_dummy = np.random.randn(output_dim, input_dim)
    b_dummy = np.random.randn(output_dim)
    grad_output_dummy = np.ones((num_samples, output_dim))  # Dummy gradient for the output layer

    linear_layer = Linear(input_dim=input_dim, output_dim=output_dim,
                          initial_weights=w_dummy.copy(), initial_biases=b_dummy.copy())

    output = linear_layer.forward(x_dummy)  # Forward pass
    analytical_grad = linear_layer.backward(grad_output_dummy)  # Backward pass (your implementation)
    numerical_grad = compute_numerical_gradient(linear_layer, x_dummy)  # Compute numerical gradient

    assert np.allclose(analytical_grad, numerical_grad, atol=1e-4), f'Gradients do not match: {analytical_grad} vs {numerical_grad}'
    print('Visible numerical gradient test passed successfully!')


def test_tanh_shapes():
    num_samples, input_dim = 3, 4
    x_dummy = np.random.randn(num_samples, input_dim)
    tanh_layer = Tanh()
    y_dummy = tanh_layer.forward(x_dummy)
    grad_output = np.random.randn(num_samples, input_dim)
    grad_input = tanh_layer.backward(grad_output)
    assert grad_input.shape == x_dummy.shape, f'Expected grad_input shape {x_dummy.shape}, but got {grad_input.shape}'
    print('Visible shape test for tanh passed successfully!')


# This checks if d(tanh)/dx works correctly.
# Make sure that your backward function also considers grad_output - coming back from the next layer
def test_tanh_gradients():
    num_samples, input_dim = 3, 4
    eps = 1e-4
    x_dummy = np.random.randn(num_samples, input_dim)
    tanh_layer = Tanh()

    grad_output_dummy = np.ones((num_samples, input_dim))  # Dummy gradient for the output layer
    output = tanh_layer.forward(x_dummy)  # Forward pass
    analytical_grad = tanh_layer.backward(grad_output_dummy)  # Backward pass (your implementation)
    numerical_grad = compute_numerical_gradient(tanh_layer, x_dummy)  # Compute numerical gradient

    assert np.allclose(analytical_grad, numerical_grad, atol=1e-4), f'Gradients do not match: {analytical_grad} vs {numerical_grad}'
    print('Visible numerical gradient test passed successfully!')


# Test case to check the shape of gradient wrt input after backward pass
def test_mlp_gradient_shapes():
    input_dim, hidden_dim, output_dim = 3, 2, 1
    num_samples = 5  # Test with a batch of 5 samples
    x_dummy = np.random.randn(num_samples, input_dim)  # Input with shape (num_samples, input_dim)
    grad_output_dummy = np.random.randn(num_samples, output_dim)  # Gradient of shape (num_samples, output_dim)
    learning_rate = 0.01

    # Initialize the MLP model
    mlp = MLP(input_dim=input_dim, hidden_dim=hidden_dim, output_dim=output_dim)

    # Forward pass
    y_pred = mlp.forward(x_dummy)

    # Backward pass
    grad_input = mlp.backward(grad_output_dummy)

    assert grad_input.shape == x_dummy.shape, f'Expected grad_input shape {x_dummy.shape}, but got {grad_input.shape}'
    print('Visible shape test for MLP gradient wrt input passed.')


def test_mse_loss_shapes():
    num_samples, output_dim = 5, 3
    y_dummy = np.random.randn(num_samples, output_dim)
    t_dummy = np.random.randn(num_samples, output_dim)

    mse_loss = MSELoss()

    # Forward pass test
    loss_value = mse_loss.forward(y_dummy, t_dummy)
    assert isinstance(loss_value, float), f'Expected loss to be a float, but got {type(loss_value)}'
    grad_input = mse_loss.backward()
    assert grad_input.shape == (num_samples, output_dim), f'Expected grad_input shape: {(num_samples, output_dim)}, but got: {grad_input.shape}'
    print('Visible shape test for MSELoss passed successfully!')


def test_training_loop():
    """The seed's training cell without its live plot; MLP seeded so the run is repeatable."""
    input_dim = 1
    hidden_dim = 10
    output_dim = 1
    learning_rate = 0.1
    epochs = 150

    # Initialize the MLP model and MSE Loss function
    mlp = MLP(input_dim=input_dim, hidden_dim=hidden_dim, output_dim=output_dim, rng=0)
    mse_loss = MSELoss()

    x, y_train = generate_data()
    losses = []
    for epoch in range(epochs):
        # Forward pass
        y_pred = mlp.forward(x)

        # Compute Loss
        loss = mse_loss.forward(y_pred, y_train)
        losses.append(loss)

        grad_loss = mse_loss.backward()
        mlp.backward(grad_loss)
        mlp.update_params(learning_rate)
        title = f'MLP Training - Iteration {epoch + 1}/{epochs} - Loss: {loss:.4f}'
    # Not the seed's: the title the seed's plot shows holds the true MSE of the last prediction
    # (loss formats with :.4f, and is the loss of this forward pass, not a stale or converted one).
    assert losses[-1] is loss
    reference = np.mean((np.asarray(y_pred, dtype=np.float64) - y_train) ** 2)
    assert title == f'MLP Training - Iteration {epochs}/{epochs} - Loss: {reference:.4f}', title
    assert loss.item() < 0.15, 'Loss is too high, check your implementation.'
